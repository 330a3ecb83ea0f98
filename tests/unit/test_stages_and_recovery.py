"""Pipeline stages, hand-offs, leases, the sweeper, and provisioning — in memory."""

from __future__ import annotations

import dataclasses

from adapters.memory.broker import InMemoryBroker
from adapters.memory.chunks import InMemoryChunkIndex
from adapters.memory.graph import InMemoryGraphStore
from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.operations import InMemoryOperatorLog
from adapters.memory.rag_configs import InMemoryRagConfigs
from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.storage import InMemoryFileStorage
from adapters.processing.embedding import FeatureHashingEmbedder
from adapters.processing.extraction import FileTextExtractor
from application.graph import build_graph, entities_in
from application.handlers import ProvisionWorkspace, RunStage
from application.jobs import JobRunner
from application.pipeline import (
    EMBEDDINGS,
    GRAPH,
    INGESTION,
    DocumentSteps,
    Stage,
    plan_for,
    work_request_for,
)
from application.recovery import LeaseSweeper
from application.status_service import StatusService
from domain.entities import RagConfig
from domain.events import DocumentChunked, DocumentEmbedded, DocumentUploaded, Event
from domain.progress import Progress
from domain.status import DocumentProcessingStatus as D
from domain.status import WorkspaceStatus as W
from tests.fakes.messaging import RecordingPublisher

TEXT = (
    b"Ada Lovelace wrote about the Analytical Engine. Charles Babbage built the Analytical "
    b"Engine. Ada Lovelace and Charles Babbage corresponded. " * 6
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Pipeline:
    def __init__(self, *, graph: bool = False) -> None:
        self.repository = InMemoryStatusRepository()
        self.clock = Clock()
        self.leases = InMemoryDocumentLeases(self.repository, clock=self.clock)
        self.work = RecordingPublisher()
        self.status = StatusService(self.repository, None)
        self.storage = InMemoryFileStorage()
        self.index = InMemoryChunkIndex()
        self.graph = InMemoryGraphStore()
        self.configs = InMemoryRagConfigs()
        self.steps = DocumentSteps(
            self.storage,
            FileTextExtractor(),
            FeatureHashingEmbedder(32),
            self.index,
            self.graph,
            lambda workspace_id: RagConfig(chunk_size=120, chunk_overlap=20),
        )
        self.runner = JobRunner(self.status)
        self.document = self.repository.add_document(
            user_id=1,
            workspace_id=1,
            filename="a.txt",
            storage_key="1/a.txt",
            progress=Progress.plan(plan_for(RagConfig(graph_enabled=graph))),
        )
        self.storage.save("1/a.txt", [TEXT])

    def handler(
        self, stage: Stage, owner: str = "w1", log: InMemoryOperatorLog | None = None
    ) -> RunStage:
        return RunStage(
            stage,
            self.runner,
            self.steps.for_stage,
            self.work,
            self.leases,
            owner=owner,
            lease_seconds=10,
            recoveries_log=log,
        )

    def request(self, stage: Stage) -> Event:
        d = self.document
        if stage is INGESTION:
            return DocumentUploaded(
                document_id=d.id, user_id=1, workspace_id=1, file_path="x", version=1
            )
        return work_request_for(stage, d, file_path="x")

    def stored(self) -> object:
        return self.repository.get_document(self.document.id)


def test_stages_hand_on_and_the_last_one_makes_the_document_ready() -> None:
    p = Pipeline()
    p.handler(INGESTION)(p.request(INGESTION))
    middle = p.repository.get_document(p.document.id)
    assert middle is not None
    assert middle.processing_status is D.PROCESSING
    assert middle.chunk_count == p.index.count(p.document.id) > 1
    assert [type(e) for e in p.work.events] == [DocumentChunked]
    p.handler(EMBEDDINGS)(p.work.events[-1])
    done = p.repository.get_document(p.document.id)
    assert done is not None
    assert done.processing_status is D.READY
    assert all(len(c.vector) == 32 for c in p.index.chunks(p.document.id))
    assert done.metadata["embedding_model"] == "feature-hashing-32"
    assert done.metadata["pages"] == 1
    assert set(done.metadata["step_seconds"]) == set(done.progress.labels)
    assert [type(e) for e in p.work.events] == [DocumentChunked]  # nothing after the last stage
    assert p.leases.leases == {}


def test_the_graph_stage_runs_only_where_the_plan_has_it() -> None:
    with_graph = Pipeline(graph=True)
    for stage in (INGESTION, EMBEDDINGS):
        with_graph.handler(stage)(with_graph.request(stage))
    assert isinstance(with_graph.work.events[-1], DocumentEmbedded)
    with_graph.handler(GRAPH)(with_graph.work.events[-1])
    done = with_graph.repository.get_document(with_graph.document.id)
    assert done is not None
    assert done.processing_status is D.READY
    nodes, edges = with_graph.graph.counts(with_graph.document.id)
    assert (done.metadata["graph_nodes"], done.metadata["graph_edges"]) == (nodes, edges)
    assert nodes >= 3
    assert edges >= 1

    without = Pipeline(graph=False)
    assert "Building graph" not in without.document.progress.labels
    without.handler(GRAPH)(without.request(GRAPH))  # a stray request changes nothing
    assert without.repository.get_document(without.document.id) == without.document


def test_a_redelivered_request_repeats_only_the_hand_off() -> None:
    p = Pipeline()
    p.handler(INGESTION)(p.request(INGESTION))
    version = p.repository.get_document(p.document.id).version  # type: ignore[union-attr]
    p.handler(INGESTION)(p.request(INGESTION))  # e.g. the first ack was lost
    assert p.repository.get_document(p.document.id).version == version  # type: ignore[union-attr]
    assert [type(e) for e in p.work.events] == [DocumentChunked, DocumentChunked]


def test_the_hand_off_goes_out_only_after_the_lease_is_released() -> None:
    # Otherwise the next stage's worker could receive it, find the document still held,
    # and drop it: the document would be stranded with no lease and no request.
    p = Pipeline()
    held_at_publish: list[bool] = []

    class LeaseWatchingPublisher(RecordingPublisher):
        def publish(self, event: Event) -> None:
            held_at_publish.append(not p.leases.acquire(p.document.id, "next-stage", 10))
            p.leases.release(p.document.id, "next-stage")
            super().publish(event)

    p.work = LeaseWatchingPublisher()
    p.handler(INGESTION)(p.request(INGESTION))
    assert held_at_publish == [False]
    assert [type(e) for e in p.work.events] == [DocumentChunked]


def test_a_document_held_by_a_live_worker_is_left_to_it() -> None:
    p = Pipeline()
    assert p.leases.acquire(p.document.id, "other", 10)
    p.handler(INGESTION, owner="me")(p.request(INGESTION))
    assert p.repository.get_document(p.document.id) == p.document
    assert p.work.events == []


def test_an_expired_lease_is_taken_up_and_requeued_then_failed_as_worker_lost() -> None:
    p = Pipeline()
    broker_side = RecordingPublisher()
    sweeper = LeaseSweeper(
        p.status, p.leases, p.storage, broker_side, owner="s", lease_seconds=10, max_recoveries=1
    )
    # A worker started parsing, then vanished without a word.
    p.status.update_document_status(
        p.document.id, "processing", progress=p.document.progress.begin("Parsing")
    ).unwrap()
    assert p.leases.acquire(p.document.id, "vanished", 10)
    assert sweeper.sweep() == 0  # not expired yet
    p.clock.now = 11
    assert sweeper.sweep() == 1
    requeued = p.repository.get_document(p.document.id)
    assert requeued is not None
    assert requeued.processing_status is D.PROCESSING
    assert requeued.metadata["recoveries"] == 1
    assert requeued.progress.current is None
    assert isinstance(broker_side.events[-1], DocumentUploaded)
    # The next worker vanishes too: this time the document fails, and says why.
    assert p.leases.acquire(p.document.id, "vanished-again", 10)
    p.clock.now = 30
    sweeper.sweep()
    lost = p.repository.get_document(p.document.id)
    assert lost is not None
    assert lost.processing_status is D.FAILED
    assert lost.processing_error is not None
    assert lost.processing_error.startswith("worker lost")


def test_a_worker_lost_before_its_first_write_leaves_a_pending_document_that_is_requeued() -> None:
    p = Pipeline()
    requests = RecordingPublisher()
    sweeper = LeaseSweeper(p.status, p.leases, p.storage, requests, owner="s", lease_seconds=10)
    assert p.leases.acquire(p.document.id, "died-at-once", 10)
    p.clock.now = 11
    assert sweeper.sweep() == 1
    (request,) = requests.events
    assert isinstance(request, DocumentUploaded)
    assert request.document_id == p.document.id
    assert p.repository.get_document(p.document.id) == p.document  # nothing else changed
    p.handler(INGESTION, owner="next")(request)
    assert p.repository.get_document(p.document.id).chunk_count > 0  # type: ignore[union-attr]


def test_a_redelivery_that_takes_over_from_a_lost_worker_is_recorded_as_a_recovery() -> None:
    p = Pipeline()
    log = InMemoryOperatorLog()
    p.handler(INGESTION, owner="steady", log=log)(p.request(INGESTION))
    assert log.recent() == []  # an ordinary run is no recovery
    q = Pipeline()
    q.status.update_document_status(
        q.document.id, "processing", progress=q.document.progress.begin("Parsing")
    ).unwrap()
    assert q.leases.acquire(q.document.id, "vanished", 10)
    q.clock.now = 11  # its lease ran out; the broker hands its request to another worker
    q.handler(INGESTION, owner="next", log=log)(q.request(INGESTION))
    (recovery,) = log.recent()
    assert (recovery.actor, recovery.action, recovery.target) == (
        "sweeper",
        "recover",
        f"document {q.document.id}",
    )
    assert recovery.outcome == "taken over at Parsing by next"
    done = q.repository.get_document(q.document.id)
    assert done is not None
    assert done.progress.all_completed(INGESTION.labels)


def test_a_late_write_from_a_vanished_worker_is_refused() -> None:
    p = Pipeline()
    started = p.status.update_document_status(
        p.document.id, "processing", progress=p.document.progress.begin("Parsing")
    ).unwrap()
    assert p.leases.acquire(p.document.id, "vanished", 10)
    p.clock.now = 11
    LeaseSweeper(
        p.status, p.leases, p.storage, RecordingPublisher(), owner="s", lease_seconds=10
    ).sweep()
    late = p.status.update_document_status(p.document.id, "ready", expected_version=started.version)
    assert late.is_err()
    assert "stale" in late.error


def test_provisioning_copies_the_owners_defaults_or_fails_on_bad_ones() -> None:
    repository = InMemoryStatusRepository()
    status = StatusService(repository, None)
    configs = InMemoryRagConfigs()
    storage = InMemoryFileStorage()
    provision = ProvisionWorkspace(status, configs, storage)
    configs.set_defaults(1, RagConfig(chunk_size=300, chunk_overlap=30, graph_enabled=True))
    good = repository.add_workspace(user_id=1, name="good")
    provision(_created(good.id, 1))
    assert repository.get_workspace(good.id).status is W.READY  # type: ignore[union-attr]
    assert configs.for_workspace(good.id) == configs.defaults_for(1)
    assert storage.areas == {str(good.id)}

    configs.set_defaults(2, RagConfig(chunk_size=100, chunk_overlap=100))
    bad = repository.add_workspace(user_id=2, name="bad")
    provision(_created(bad.id, 2))
    failed = repository.get_workspace(bad.id)
    assert failed is not None
    assert failed.status is W.ERROR
    assert failed.status_message is not None
    assert "chunk_overlap" in failed.status_message
    assert configs.for_workspace(bad.id) is None

    provision(_created(good.id, 1))  # redelivered: nothing changes
    assert repository.get_workspace(good.id).version == 2  # type: ignore[union-attr]


def test_a_provisioning_failure_is_an_error_status_not_a_crash() -> None:
    repository = InMemoryStatusRepository()

    class FullDisk(InMemoryFileStorage):
        def prepare_area(self, prefix: str) -> None:
            raise OSError("No space left on device")

    provision = ProvisionWorkspace(
        StatusService(repository, None), InMemoryRagConfigs(), FullDisk()
    )
    workspace = repository.add_workspace(user_id=1, name="w")
    provision(_created(workspace.id, 1))
    stored = repository.get_workspace(workspace.id)
    assert stored is not None
    assert (stored.status, stored.status_message) == (
        W.ERROR,
        "provisioning failed: No space left on device",
    )


def _created(workspace_id: int, user_id: int) -> Event:
    from domain.events import WorkspaceCreated

    return WorkspaceCreated(workspace_id=workspace_id, user_id=user_id, name="w", version=1)


def test_graph_building_is_deterministic() -> None:
    chunks = [
        "Ada Lovelace met Charles Babbage in London.",
        "Charles Babbage designed the Analytical Engine.",
        "The Analytical Engine inspired Ada Lovelace. London was busy.",
    ]
    assert entities_in(chunks[0]) == ["Ada Lovelace", "Charles Babbage", "London"]
    nodes, edges = build_graph(chunks)
    assert [(n.label, n.mentions) for n in nodes] == [
        ("Ada Lovelace", 2),
        ("Analytical Engine", 2),
        ("Charles Babbage", 2),
        ("London", 2),
    ]
    assert ("Ada Lovelace", "Charles Babbage", 1) in [(e.source, e.target, e.weight) for e in edges]
    assert build_graph(list(reversed(chunks))) == (nodes, edges)


def test_the_in_memory_broker_routes_every_stage_queue() -> None:
    broker = InMemoryBroker()
    publisher = broker.publisher()
    queues = {
        s.name: broker.work_queue(s.name, (s.consumes.routing_key,))
        for s in (INGESTION, EMBEDDINGS, GRAPH)
    }
    p = Pipeline()
    for stage in (INGESTION, EMBEDDINGS, GRAPH):
        publisher.publish(p.request(stage))
    for stage in (INGESTION, EMBEDDINGS, GRAPH):
        delivery = queues[stage.name].receive(timeout=1)
        assert delivery is not None
        assert isinstance(delivery.event, stage.consumes)
        delivery.ack()
    assert dataclasses.is_dataclass(p.document)
