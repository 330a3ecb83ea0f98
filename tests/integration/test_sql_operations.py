"""The operator's views on each engine: heartbeats, the operator log and stuck work."""

from __future__ import annotations

import time

from adapters.sql.database import Database
from adapters.sql.leases import SqlDocumentLeases
from adapters.sql.operations import SqlOperatorLog, SqlStuckWork, SqlWorkerRegistry
from adapters.sql.repository import SqlStatusRepository
from domain.ports import OperatorAction, WorkerBeat
from domain.status import DocumentProcessingStatus
from tests.contracts.repository import changed_document
from tests.integration.test_sql_leases_and_graph import new_document


def test_heartbeats_are_replaced_listed_while_fresh_and_forgotten(database: Database) -> None:
    registry = SqlWorkerRegistry(database.session_factory)
    registry.beat(WorkerBeat(worker_id="a", stage="ingestion", host="h", pid=1))
    registry.beat(
        WorkerBeat(
            worker_id="a",
            stage="ingestion",
            host="h",
            pid=1,
            current_documents=(4, 2),
            processed=7,
            failed=1,
        )
    )
    registry.beat(WorkerBeat(worker_id="b", stage="graph", host="h", pid=2))
    (graph, ingestion) = registry.live(60.0)
    assert graph.worker_id == "b"
    assert (ingestion.current_documents, ingestion.processed, ingestion.failed) == ((4, 2), 7, 1)
    assert ingestion.seen_at is not None
    time.sleep(0.4)
    registry.beat(WorkerBeat(worker_id="b", stage="graph", host="h", pid=2))
    assert [b.worker_id for b in registry.live(0.3)] == ["b"]
    registry.forget("b")
    assert registry.live(0.3) == []


def test_operator_actions_come_back_newest_first_and_by_actor(database: Database) -> None:
    log = SqlOperatorLog(database.session_factory)
    for n, actor in enumerate(("alice", "sweeper", "alice")):
        log.record(OperatorAction(actor=actor, action="requeue", target=f"q/{n}", outcome="done"))
    assert [a.target for a in log.recent()] == ["q/2", "q/1", "q/0"]
    assert [a.target for a in log.recent(actor="alice", limit=1)] == ["q/2"]
    first = log.recent()[0]
    assert first.at is not None
    assert first.at.tzinfo is not None


def test_stuck_work_is_processing_without_a_lease_or_with_one_running_out(
    database: Database,
) -> None:
    repository = SqlStatusRepository(database.session_factory)
    leases = SqlDocumentLeases(database.session_factory)
    unleased, expiring, healthy, waiting, done = (new_document(repository) for _ in range(5))
    for document in (unleased, expiring, healthy):
        changed_document(repository, document.id, DocumentProcessingStatus.PROCESSING)
    changed_document(repository, done.id, DocumentProcessingStatus.FAILED)
    assert leases.acquire(expiring.id, "w1", 2.0)
    assert leases.acquire(healthy.id, "w2", 600.0)
    assert leases.acquire(done.id, "w3", 1.0)
    found = SqlStuckWork(database.session_factory).find(expiring_within=10.0)
    assert [(s.document_id, s.status, s.owner) for s in found] == [
        (unleased.id, "processing", None),
        (expiring.id, "processing", "w1"),
    ]
    assert found[0].seconds_left is None
    assert found[1].seconds_left is not None
    assert 0 < found[1].seconds_left <= 2.0
    assert waiting.id not in {s.document_id for s in found}
