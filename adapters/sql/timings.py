"""Step timings read from the metadata of the latest ready documents in the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import documents
from domain.ports import StepTimings
from domain.progress import Progress
from domain.status import DocumentProcessingStatus
from domain.timing import TimedRun


class SqlStepTimings(StepTimings):
    """One query along the status index: every process and the server read the same runs."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def recent(self, limit: int) -> list[TimedRun]:
        query = (
            select(documents.c.metadata, documents.c.progress)
            .where(documents.c.processing_status == DocumentProcessingStatus.READY.value)
            .order_by(documents.c.position.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        runs = []
        for metadata, progress in rows:
            try:
                steps = Progress.from_json(progress)
            except ValueError:  # a malformed stored step list: its step_seconds still count
                steps = None
            runs.append(TimedRun.from_metadata(metadata or {}, steps))
        return [run for run in runs if run is not None]
