"""The operator's console over in-process adapters: dead letters, heartbeats, rates, stuck work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from adapters.bootstrap import Services, bootstrap
from adapters.memory.broker import InMemoryBroker
from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.operations import (
    InMemoryOperatorLog,
    InMemoryStuckWork,
    InMemoryWorkerRegistry,
)
from adapters.memory.repository import InMemoryStatusRepository
from application.operations import OperatorConsole, StageRateSampler, WorkerPresence
from application.pipeline import DOCUMENT_STEPS
from application.worker import Worker
from domain.changes import DocumentStatusChange
from domain.events import WORK_QUEUES, DocumentUploaded
from domain.ports import WorkerBeat
from domain.problems import ProblemKind
from domain.progress import Progress
from domain.result import Err, Ok
from domain.status import DocumentProcessingStatus as D
from entrypoints.runtime import start_worker_threads


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def uploaded(document_id: int = 7) -> DocumentUploaded:
    return DocumentUploaded(
        document_id=document_id, user_id=3, workspace_id=5, file_path="x", version=1
    )


def dead_letter(broker: InMemoryBroker, event: DocumentUploaded, reason: str) -> None:
    broker.publisher().publish(event)
    queue = broker.work_queue("ingestion", WORK_QUEUES["ingestion"])
    delivery = queue.receive(1.0)
    assert delivery is not None
    delivery.dead_letter(reason)
    queue.close()


def console_over(broker: InMemoryBroker, log: InMemoryOperatorLog | None = None) -> OperatorConsole:
    repository = InMemoryStatusRepository()
    return OperatorConsole(
        broker.dead_letters(),
        list(WORK_QUEUES),
        InMemoryWorkerRegistry(),
        log or InMemoryOperatorLog(),
        InMemoryStuckWork(repository, InMemoryDocumentLeases(repository)),
        heartbeat_seconds=5.0,
    )


def test_dead_letters_are_listed_per_queue_with_their_reason_and_entity() -> None:
    broker = InMemoryBroker()
    dead_letter(broker, uploaded(7), "RuntimeError: refused")
    found = console_over(broker).dead_letters()
    assert isinstance(found, Ok)
    assert set(found.value) == set(WORK_QUEUES)
    (letter,) = found.value["ingestion"]
    assert letter.reason == "RuntimeError: refused"
    assert isinstance(letter.event, DocumentUploaded)
    assert letter.event.document_id == 7
    assert letter.first_failed_at is not None
    assert letter.last_failed_at is not None


def test_requeue_delivers_afresh_and_is_recorded_with_its_actor() -> None:
    broker = InMemoryBroker()
    log = InMemoryOperatorLog()
    console = console_over(broker, log)
    dead_letter(broker, uploaded(7), "boom")
    letters = console.dead_letters("ingestion")
    assert isinstance(letters, Ok)
    (letter,) = letters.value["ingestion"]
    assert console.requeue("ingestion", letter.letter_id, actor="alice") == Ok(True)
    queue = broker.work_queue("ingestion", WORK_QUEUES["ingestion"])
    delivery = queue.receive(1.0)
    assert delivery is not None
    assert isinstance(delivery.event, DocumentUploaded)
    assert delivery.event.document_id == 7
    assert delivery.attempt == 1
    # Asking again finds nothing, says so, and is recorded too.
    again = console.requeue("ingestion", letter.letter_id, actor="alice")
    assert isinstance(again, Err)
    assert again.error.kind is ProblemKind.NOT_FOUND
    (missed, done) = log.recent()
    assert (done.actor, done.action, done.target, done.outcome) == (
        "alice",
        "requeue",
        f"ingestion/{letter.letter_id}",
        "done",
    )
    assert missed.outcome == "not found"
    assert missed.at is not None


def test_requeue_all_and_discard() -> None:
    broker = InMemoryBroker()
    console = console_over(broker)
    for document_id in (1, 2, 3):
        dead_letter(broker, uploaded(document_id), "boom")
    letters = console.dead_letters("ingestion")
    assert isinstance(letters, Ok)
    first = letters.value["ingestion"][0]
    assert console.discard("ingestion", first.letter_id, actor="bob") == Ok(True)
    assert console.requeue_all("ingestion", actor="bob") == Ok(2)
    assert console.dead_letters("ingestion") == Ok({"ingestion": []})
    assert [a.action for a in console.actions()] == ["requeue-all", "discard"]


def test_an_unknown_queue_is_refused_naming_the_choices() -> None:
    console = console_over(InMemoryBroker())
    for result in (
        console.dead_letters("nope"),
        console.requeue("nope", "x", actor="a"),
        console.requeue_all("nope", actor="a"),
        console.discard("nope", "x", actor="a"),
    ):
        assert isinstance(result, Err)
        assert result.error.kind is ProblemKind.NOT_FOUND
        assert "ingestion" in result.error.message
    assert console.actions() == []


def test_a_worker_not_heard_from_within_two_intervals_leaves_the_live_list() -> None:
    clock = Clock()
    registry = InMemoryWorkerRegistry(clock)
    registry.beat(WorkerBeat(worker_id="w1", stage="ingestion", host="h", pid=1))
    registry.beat(WorkerBeat(worker_id="w2", stage="graph", host="h", pid=2))
    clock.now += 6
    registry.beat(WorkerBeat(worker_id="w2", stage="graph", host="h", pid=2, processed=4))
    clock.now += 5
    assert [b.worker_id for b in registry.live(10.0)] == ["w2"]
    registry.forget("w2")
    assert registry.live(10.0) == []


def test_presence_reports_the_documents_under_way_and_the_counts() -> None:
    registry = InMemoryWorkerRegistry()
    broker = InMemoryBroker()
    presence = WorkerPresence(registry, worker_id="w", stage="ingestion", host="h", pid=9)
    seen: list[WorkerBeat] = []

    def handler(event: object) -> None:
        seen.append(presence.current())
        if isinstance(event, DocumentUploaded) and event.document_id == 2:
            raise RuntimeError("refused")

    queue = broker.work_queue("ingestion", WORK_QUEUES["ingestion"])
    worker = Worker(queue, {"document.uploaded": handler}, retry_backoff=lambda attempt: 0.0)
    presence.track(worker)
    broker.publisher().publish_many([uploaded(1), uploaded(2)])
    assert worker.run_once(1.0)
    assert worker.run_once(1.0)
    assert [b.current_documents for b in seen] == [(1,), (2,)]
    presence.beat()
    (beat,) = registry.live(1.0)
    assert (beat.processed, beat.failed, beat.current_documents, beat.pid) == (1, 1, (), 9)
    presence.leave()
    assert registry.live(1.0) == []


def test_stage_rates_count_only_what_happened_within_the_window() -> None:
    clock = Clock()
    sampler = StageRateSampler(window_seconds=60.0, clock=clock)

    def beat(worker: str, processed: int, failed: int) -> WorkerBeat:
        return WorkerBeat(
            worker_id=worker, stage="ingestion", host="h", pid=1, processed=processed, failed=failed
        )

    assert sampler.rates([beat("a", 100, 0)])[0].processed == 0
    clock.now += 30
    (rates,) = sampler.rates([beat("a", 130, 10), beat("b", 5, 0)])
    assert (rates.workers, rates.processed, rates.failed) == (2, 30, 10)
    assert rates.per_minute == pytest.approx(60.0)
    assert rates.failure_rate == pytest.approx(0.25)
    clock.now += 45  # the first sample of "a" is now out of the window
    (rates,) = sampler.rates([beat("a", 140, 10)])
    assert (rates.workers, rates.processed, rates.failed) == (1, 10, 0)


def test_stuck_work_is_processing_without_a_lease_or_a_lease_running_out() -> None:
    clock = Clock()
    repository = InMemoryStatusRepository()
    leases = InMemoryDocumentLeases(repository, clock)
    stuck = InMemoryStuckWork(repository, leases)
    ids = []
    for name in ("unleased", "expiring", "healthy", "waiting"):
        document = repository.add_document(
            user_id=1,
            workspace_id=1,
            filename=name,
            storage_key=name,
            progress=Progress.plan(DOCUMENT_STEPS),
        )
        ids.append(document.id)
    for document_id in ids[:3]:
        moved = repository.update_document_status(
            DocumentStatusChange(document_id=document_id, status=D.PROCESSING)
        )
        assert isinstance(moved, Ok)
    leases.acquire(ids[1], "w1", 5.0)
    leases.acquire(ids[2], "w2", 60.0)
    found = stuck.find(expiring_within=10.0)
    assert [(s.document_id, s.owner, s.seconds_left) for s in found] == [
        (ids[0], None, None),
        (ids[1], "w1", 5.0),
    ]


def test_requeueing_a_request_whose_document_is_ready_changes_nothing() -> None:
    services = bootstrap({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    stop = threading.Event()
    try:
        services.start()
        threads = start_worker_threads(services, list(WORK_QUEUES), stop)
        workspace = services.workspaces.create(user_id=4, name="w")
        assert isinstance(workspace, Ok)
        _wait(lambda: _workspace_status(services, workspace.value.id) == "ready")
        document = services.documents.upload(
            user_id=4, workspace_id=workspace.value.id, filename="a.txt", content=[b"hello " * 50]
        )
        assert isinstance(document, Ok)
        document_id = document.value.id
        _wait(lambda: _document_status(services, document_id) is D.READY)
        stop.set()
        for thread in threads:
            thread.join(5)
        ready = services.repository.get_document(document_id)
        assert ready is not None
        broker = services.broker
        assert isinstance(broker, InMemoryBroker)
        request = DocumentUploaded(
            document_id=document_id,
            user_id=4,
            workspace_id=workspace.value.id,
            file_path="a.txt",
            version=1,
        )
        dead_letter(broker, request, "boom")
        console = services.operator_console
        letters = console.dead_letters("ingestion")
        assert isinstance(letters, Ok)
        (letter,) = letters.value["ingestion"]
        assert console.requeue("ingestion", letter.letter_id, actor="op") == Ok(True)
        stop.clear()
        workers: list[Worker] = []
        start_worker_threads(services, ["ingestion"], stop, on_worker=workers.append)
        _wait(lambda: workers[0].handled == 1)
        assert console.dead_letters("ingestion") == Ok({"ingestion": []})
        assert services.repository.get_document(document_id) == ready
    finally:
        stop.set()
        services.close()


def _wait(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def _workspace_status(services: Services, workspace_id: int) -> str | None:
    found = services.repository.get_workspace(workspace_id)
    return found.status.value if found else None


def _document_status(services: Services, document_id: int) -> D | None:
    found = services.repository.get_document(document_id)
    return found.processing_status if found else None
