"""Step timings read from the in-memory repository's ready documents."""

from __future__ import annotations

from adapters.memory.repository import InMemoryStatusRepository
from domain.ports import StepTimings
from domain.timing import TimedRun


class InMemoryStepTimings(StepTimings):
    """The runs recorded in the metadata of the repository's latest ready documents."""

    def __init__(self, repository: InMemoryStatusRepository) -> None:
        self._repository = repository

    def recent(self, limit: int) -> list[TimedRun]:
        ready = self._repository.recently_ready(limit)
        runs = (TimedRun.from_metadata(d.metadata, d.progress) for d in ready)
        return [run for run in runs if run is not None]
