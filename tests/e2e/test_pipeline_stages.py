"""Pipeline stages as separate worker processes, on PostgreSQL and every real transport.

Each stage (ingestion → embeddings → graph) runs in its own ``insighthub worker`` process; the
document's one status is written by all of them in turn. The test plays the server: it creates
workspaces and uploads through the use cases, listens to the status broadcast, and reads the
outcome from the database.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from application.pipeline import (
    CHUNKING,
    DOCUMENT_STEPS,
    EMBEDDING,
    GRAPH,
    GRAPHING,
    INDEXING,
    PARSING,
    STAGES_BY_NAME,
    plan_for,
)
from domain.entities import Document, RagConfig
from domain.progress import StepState
from domain.result import Ok
from domain.status import DocumentProcessingStatus as D
from tests.support.corpus import big_text, pdf_with_pages, prose
from tests.support.processes import Deployment, StatusLog, deployment

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

GRAPH_ON = RagConfig(graph_enabled=True)
FULL_PLAN = plan_for(GRAPH_ON)
SETTLE_SECONDS = 120.0
LEASE_SECONDS = 3.0
SHORT_LEASE = {"WORKER_LEASE_SECONDS": str(LEASE_SECONDS)}
# Lease expiry, a sweep, and the document's processing again, on a busy machine.
RECOVERY_SECONDS = LEASE_SECONDS + 45.0


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment("rabbitmq", tmp_path_factory.mktemp("stages-rabbitmq")) as place:
        yield place


@pytest.fixture
def place(rabbit: Deployment) -> Iterator[Deployment]:
    """The module's RabbitMQ deployment, with every process a test started stopped after it."""
    yield rabbit
    rabbit.processes.stop_all()


def state_of(document: Document, label: str) -> StepState:
    return next(step.state for step in document.progress.steps if step.label == label)


def assert_one_coherent_status(log: StatusLog, document: Document) -> None:
    """Every change was heard once, versions rise by one, the step list never changes shape."""
    events = sorted(log.for_document(document.id), key=lambda e: e.version)
    versions = [e.version for e in events]
    assert versions == list(range(1, document.version + 1)), versions
    for event in events:
        assert event.progress.labels == document.progress.labels
    # Within an attempt (from each pending on), steps only ever get done, never undone.
    attempt: list[int] = []
    for event in events:
        if event.status is D.PENDING:
            attempt = []
        attempt.append(event.progress.completed_count)
        assert attempt == sorted(attempt), [e.progress.completed_count for e in events]
    assert events[-1].status is document.processing_status


def assert_stored_once(place: Deployment, document: Document) -> None:
    """What the stores hold matches what the status says: nothing duplicated."""
    assert document.chunk_count > 0
    assert place.chunk_rows(document.id) == document.chunk_count
    if GRAPHING in document.progress.labels:
        nodes, edges = place.graph_rows(document.id)
        assert (nodes, edges) == (
            document.metadata["graph_nodes"],
            document.metadata["graph_edges"],
        )
        assert nodes > 0
    else:
        assert place.graph_rows(document.id) == (0, 0)
        assert "graph_nodes" not in document.metadata


@pytest.mark.parametrize(
    ("transport", "per_workspace"),
    [
        pytest.param("rabbitmq", 15, marks=pytest.mark.rabbitmq),
        pytest.param("nats", 3, marks=pytest.mark.nats),
        pytest.param("redis", 3, marks=pytest.mark.redis),
    ],
)
def test_documents_flow_through_three_stage_processes(
    transport: str, per_workspace: int, tmp_path: Path
) -> None:
    with deployment(transport, tmp_path) as place:
        graphed = place.ready_workspace(7101, GRAPH_ON)
        plain = place.ready_workspace(7102)  # the built-in defaults: no graph stage
        log = place.listen()
        place.processes.workers("ingestion", "embeddings", "graph")
        uploaded = [
            place.upload(workspace, f"doc-{n}.txt", prose(1500, seed=n).encode())
            for n in range(per_workspace)
            for workspace in (graphed, plain)
        ]
        settled = place.settled([d.id for d in uploaded], timeout=SETTLE_SECONDS)

        for document in settled:
            assert document.processing_status is D.READY, document
            assert document.processing_error is None
            assert document.progress.is_complete
            assert_stored_once(place, document)
            assert_one_coherent_status(log, document)
            assert document.metadata["embedding_model"] == "feature-hashing-256"
            assert set(document.metadata["step_seconds"]) == set(document.progress.labels)
            if document.workspace_id == graphed.id:
                assert document.progress.labels == FULL_PLAN
                # Exactly once: two changes per stage step, one per stage end, and upload.
                assert document.version == 1 + len(FULL_PLAN) + 3
            else:
                assert document.progress.labels == DOCUMENT_STEPS
                assert all(GRAPHING not in e.progress.labels for e in log.for_document(document.id))
                assert document.version == 1 + len(DOCUMENT_STEPS) + 2
        # Every stage was done by its own process.
        logs = {p.name: p.log() for p in place.processes.started}
        for kind in ("ingestion", "embeddings", "graph"):
            (own,) = [text for name, text in logs.items() if name.startswith(f"worker-{kind}")]
            assert f"stage {kind} done" in own
            others = [text for name, text in logs.items() if not name.startswith(f"worker-{kind}")]
            assert all(f"stage {kind} done" not in other for other in others)


def slow_document_for(stage: str) -> tuple[str, bytes]:
    """A document whose ``stage`` takes long enough to be caught in the middle of it."""
    if stage == "ingestion":
        pages = [textwrap.wrap(prose(700, seed=n), 90) for n in range(300)]
        return "long.pdf", pdf_with_pages(pages)
    return "long.txt", big_text(4)


@pytest.mark.rabbitmq
@pytest.mark.parametrize("stage", ["ingestion", "embeddings", "graph"])
def test_a_stage_worker_killed_mid_document_is_recovered(place: Deployment, stage: str) -> None:
    user_id = {"ingestion": 7201, "embeddings": 7202, "graph": 7203}[stage]
    workspace = place.ready_workspace(user_id, GRAPH_ON)
    others = [kind for kind in ("ingestion", "embeddings", "graph") if kind != stage]
    place.processes.workers(*others, environ=SHORT_LEASE)
    victim = place.processes.worker(stage, environ=SHORT_LEASE)
    filename, data = slow_document_for(stage)
    document = place.upload(workspace, filename, data)
    labels = STAGES_BY_NAME[stage].labels

    caught = place.wait_for(
        document.id,
        lambda d: any(state_of(d, label) is StepState.ACTIVE for label in labels),
        timeout=60,
        what=f"{stage} under way",
    )
    victim.kill()
    assert caught.processing_status is D.PROCESSING
    # A supervisor restarts the stage's worker; the work must not depend on the dead one.
    place.processes.worker(stage, environ=SHORT_LEASE)

    (done,) = place.settled([document.id], timeout=RECOVERY_SECONDS)
    assert done.processing_status is D.READY, done.processing_error
    assert done.progress.is_complete
    assert_stored_once(place, done)
    assert all(
        d.processing_status is not D.PROCESSING
        for d in place.container.repository().list_documents(user_id=user_id)
    )


@pytest.mark.rabbitmq
@pytest.mark.parametrize("stage", ["ingestion", "embeddings"])
def test_a_stage_that_dies_before_handing_on_does_not_strand_the_document(
    place: Deployment, stage: str
) -> None:
    user_id = {"ingestion": 7301, "embeddings": 7302}[stage]
    workspace = place.ready_workspace(user_id, GRAPH_ON)
    log = place.listen()
    dying = place.processes.dying_worker(stage, environ=SHORT_LEASE)
    if stage == "embeddings":
        place.processes.worker("ingestion", environ=SHORT_LEASE)
    document = place.upload(workspace, "report.txt", prose(2000, seed=3).encode())

    dying.wait_exit(timeout=60)
    assert "dying before handing on" in dying.log()
    recorded = place.document(document.id)
    # The stage's result is recorded; the hand-off to the next stage never went out.
    assert recorded.processing_status is D.PROCESSING
    assert recorded.progress.all_completed(STAGES_BY_NAME[stage].labels)
    assert recorded.progress.first_incomplete() not in STAGES_BY_NAME[stage].labels

    restarted = place.processes.workers("ingestion", "embeddings", "graph", environ=SHORT_LEASE)
    (done,) = place.settled([document.id], timeout=RECOVERY_SECONDS)
    assert done.processing_status is D.READY, done.processing_error
    assert_stored_once(place, done)
    # The request the dead worker never acknowledged came back, and its stage handed on.
    (again,) = [p for p in restarted if p.name.startswith(f"worker-{stage}")]
    assert f"stage {stage} done: processing [document_id={document.id} " in again.log()
    # The stage's steps were recorded once and never run again: only the hand-off was.
    for label in STAGES_BY_NAME[stage].labels:
        began = [
            e
            for e in log.for_document(document.id)
            if any(s.label == label and s.state is StepState.ACTIVE for s in e.progress.steps)
        ]
        assert len(began) == 1, [e.version for e in began]


@pytest.mark.rabbitmq
def test_a_failure_in_any_stage_names_it_and_a_retry_starts_over_cleanly(
    place: Deployment,
) -> None:
    workspace = place.ready_workspace(7401, GRAPH_ON)
    log = place.listen()
    storage = place.container.storage()
    missing = place.upload(workspace, "missing.txt", prose(900, seed=1).encode())
    unembedded = place.upload(workspace, "unembedded.txt", prose(900, seed=2).encode())
    ungraphed = place.upload(workspace, "ungraphed.txt", prose(900, seed=3).encode())
    # The first upload's file vanishes from storage before any worker reads it.
    stored = Path(storage.locate(missing.storage_key))
    content = stored.read_bytes()
    stored.unlink()

    place.processes.worker("ingestion")
    failed_parse = place.wait_for(
        missing.id, lambda d: d.processing_status is D.FAILED, timeout=30, what="parse failure"
    )
    assert failed_parse.processing_error == (
        f"{PARSING} failed: the uploaded file is missing from storage"
    )
    for document in (unembedded, ungraphed):
        place.wait_for(
            document.id,
            lambda d: state_of(d, CHUNKING) is StepState.COMPLETED,
            timeout=30,
            what="ingestion done",
        )
    # The chunks of one are lost between stages; the embeddings stage must notice.
    place.container.chunk_index().replace(unembedded.id, [])
    place.processes.worker("embeddings")
    failed_embedding = place.wait_for(
        unembedded.id, lambda d: d.processing_status is D.FAILED, timeout=30, what="failure"
    )
    assert failed_embedding.processing_error == (
        f"{EMBEDDING} failed: no chunks were stored for the document; retry it"
    )
    chunked = place.wait_for(
        ungraphed.id,
        lambda d: state_of(d, INDEXING) is StepState.COMPLETED,
        timeout=30,
        what="embeddings done",
    )
    assert place.chunk_rows(ungraphed.id) == chunked.chunk_count
    # The graph tables are away while the graph stage runs: it fails, and says so.
    engine = place.container.database().engine
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE graph_edges RENAME TO graph_edges_away"))
    try:
        place.processes.worker("graph")
        failed_graph = place.wait_for(
            ungraphed.id, lambda d: d.processing_status is D.FAILED, timeout=30, what="failure"
        )
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE graph_edges_away RENAME TO graph_edges"))
    assert failed_graph.processing_error is not None
    assert failed_graph.processing_error.startswith(f"{GRAPHING} failed: unexpected error (")
    assert "\n" not in failed_graph.processing_error
    assert state_of(failed_graph, GRAPHING) is StepState.FAILED

    stored.write_bytes(content)
    retried = []
    for document in (missing, unembedded, ungraphed):
        again = place.container.documents().retry(
            user_id=workspace.user_id, document_id=document.id
        )
        assert isinstance(again, Ok), again
        retried.append(again.value)
    settled = place.settled([d.id for d in retried], timeout=SETTLE_SECONDS)
    for before, document in zip(retried, settled, strict=True):
        assert document.processing_status is D.READY, document.processing_error
        assert document.processing_error is None
        assert_stored_once(place, document)
        assert_one_coherent_status(log, document)
        # The retry started over from the first step of the first stage.
        after_retry = sorted(
            (e for e in log.for_document(document.id) if e.version > before.version),
            key=lambda e: e.version,
        )
        assert after_retry[0].progress.current == PARSING
        assert "recoveries" not in document.metadata


@pytest.mark.rabbitmq
def test_graph_enabled_by_the_owners_defaults_runs_and_disabled_is_skipped(
    place: Deployment,
) -> None:
    """The workspace's settings decide, at upload, whether a document has a graph step."""
    graphed = place.ready_workspace(7501, RagConfig(graph_enabled=True, chunk_size=300))
    plain = place.ready_workspace(7502, RagConfig(graph_enabled=False, chunk_size=300))
    assert place.container.rag_configs().for_workspace(graphed.id) == RagConfig(
        graph_enabled=True, chunk_size=300
    )
    log = place.listen()
    place.processes.workers("ingestion", "embeddings", "graph")
    with_graph = place.upload(graphed, "a.md", prose(800, seed=5).encode())
    without = place.upload(plain, "b.md", prose(800, seed=5).encode())
    done_with, done_without = place.settled([with_graph.id, without.id], timeout=SETTLE_SECONDS)

    assert done_with.progress.labels == FULL_PLAN
    assert done_without.progress.labels == DOCUMENT_STEPS
    assert done_with.processing_status is done_without.processing_status is D.READY
    assert done_with.chunk_count == done_without.chunk_count
    assert done_with.metadata["chunk_size"] == 300
    for document in (done_with, done_without):
        assert_stored_once(place, document)
        assert_one_coherent_status(log, document)
    assert not any(GRAPH.labels[0] in e.progress.labels for e in log.for_document(without.id))
    graph_log = next(p for p in place.processes.started if p.name.startswith("worker-graph"))
    assert f"document_id={without.id} " not in graph_log.log()
