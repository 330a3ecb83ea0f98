"""Step timings read from SQL, and the outbox's events carrying the estimate that was stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from adapters.sql.database import Database
from adapters.sql.records import outbox
from adapters.sql.repository import SqlStatusRepository
from adapters.sql.timings import SqlStepTimings
from application.eta import EtaEstimator
from application.jobs import JobContext, JobRunner, JobStep
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated, decode
from domain.progress import Progress
from domain.timing import SIZE_KEY, TimedRun

PLAN = ["Parsing", "Chunking text"]


def test_the_latest_ready_runs_are_read_and_the_outbox_carries_the_stored_estimate(
    database: Database,
) -> None:
    repository = SqlStatusRepository(database.session_factory, outbox=True)
    timings = SqlStepTimings(database.session_factory)
    at = [datetime(2026, 1, 1, tzinfo=UTC)]

    def now() -> datetime:
        return at[0]

    def takes(label: str, seconds: float) -> JobStep:
        def run(context: JobContext) -> None:
            at[0] += timedelta(seconds=seconds)

        return JobStep(label, run)

    runner = JobRunner(
        StatusService(repository, None),
        clock=lambda: now().timestamp(),
        estimator=EtaEstimator(timings, now=now, refresh_seconds=0),
        now=now,
    )
    steps = [takes("Parsing", 2), takes("Chunking text", 1)]

    def add(size: int) -> int:
        return repository.add_document(
            user_id=1,
            workspace_id=repository.add_workspace(user_id=1, name="w").id,
            filename="a.txt",
            storage_key="k",
            progress=Progress.plan(PLAN),
            metadata={SIZE_KEY: size},
        ).id

    add(50)  # never processed: pending documents are no history
    first = add(100)
    runner.run(first, steps).unwrap()
    assert timings.recent(10) == [TimedRun(100, {"Parsing": 2.0, "Chunking text": 1.0})]

    # One size seen: four times the size is announced as twice the time.
    second = add(400)
    runner.run(second, steps).unwrap()
    assert [run.size_bytes for run in timings.recent(10)] == [400, 100]
    assert len(timings.recent(1)) == 1

    with database.engine.connect() as connection:
        bodies = connection.execute(select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    events = [e for e in map(decode, bodies) if isinstance(e, DocumentStatusUpdated)]
    of_second = [(e.status.value, e.eta_seconds) for e in events if e.document_id == second]
    assert of_second == [
        ("pending", None),
        ("processing", 4.0 + 2.0),
        ("processing", 2.0),
        ("ready", None),
    ]
