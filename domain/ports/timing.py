"""Read access to how long recent documents' steps took."""

from __future__ import annotations

from abc import ABC, abstractmethod

from domain.timing import TimedRun


class StepTimings(ABC):
    """The step timings of the most recently finished documents, newest first."""

    @abstractmethod
    def recent(self, limit: int) -> list[TimedRun]:
        """Up to ``limit`` runs of documents that became ready, newest first."""
