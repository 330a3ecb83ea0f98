"""``insighthub worker`` processes on PostgreSQL and RabbitMQ: real files, competing workers,
signals, start-up, liveness and logs.

The test plays the server: it creates workspaces and uploads through the use cases and reads
the outcome from the database; the work itself is done by worker subprocesses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.pipeline import CHUNKING, DOCUMENT_STEPS, EMBEDDING, INDEXING
from domain.entities import RagConfig
from domain.events import DocumentUploaded
from domain.progress import Progress, StepState
from domain.result import Err, Ok
from domain.status import DocumentProcessingStatus as D
from domain.status import WorkspaceStatus as W
from tests.support.corpus import UNSUPPORTED, big_text, corpus, pdf_with_pages, prose
from tests.support.processes import Deployment, deployment, free_port, wait_until
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

SETTLE_SECONDS = 120.0
SHORT_LEASE = {"WORKER_LEASE_SECONDS": "3"}
# The number of status changes of a document processed once without graph: upload, then one
# per step begun and one per stage finished.
ONCE_WITHOUT_GRAPH = 1 + len(DOCUMENT_STEPS) + 2


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment("rabbitmq", tmp_path_factory.mktemp("workers-rabbitmq")) as place:
        yield place


@pytest.fixture
def place(rabbit: Deployment) -> Iterator[Deployment]:
    """The module's deployment, with every process a test started stopped after it."""
    yield rabbit
    rabbit.processes.stop_all()


def state_of(progress: Progress, label: str) -> StepState:
    return next(step.state for step in progress.steps if step.label == label)


def test_every_file_of_the_corpus_ends_in_the_right_state(place: Deployment) -> None:
    workspace = place.ready_workspace(8101)
    worker = place.processes.worker("all", environ={"LOG_FORMAT": "json"})
    files = corpus()
    uploaded = [place.upload(workspace, f.filename, f.data) for f in files]
    # A type no upload accepts, arriving anyway (say, queued by an older release).
    refused = place.container.documents().upload(
        user_id=workspace.user_id,
        workspace_id=workspace.id,
        filename=UNSUPPORTED.filename,
        content=[UNSUPPORTED.data],
    )
    assert isinstance(refused, Err)
    assert "unsupported file type '.xlsx'" in refused.error.message
    key = f"{workspace.id}/{uuid.uuid4().hex}.xlsx"
    place.container.storage().save(key, [UNSUPPORTED.data])
    smuggled = place.container.repository().add_document(
        user_id=workspace.user_id,
        workspace_id=workspace.id,
        filename=UNSUPPORTED.filename,
        storage_key=key,
        progress=Progress.plan(DOCUMENT_STEPS),
    )
    place.container.publisher().publish(
        DocumentUploaded(
            document_id=smuggled.id,
            user_id=smuggled.user_id,
            workspace_id=smuggled.workspace_id,
            file_path=place.container.storage().locate(key),
            version=smuggled.version,
        )
    )

    settled = place.settled([d.id for d in [*uploaded, smuggled]], timeout=SETTLE_SECONDS)
    config = RagConfig()
    for file, document in zip([*files, UNSUPPORTED], settled, strict=True):
        if file.ready:
            assert document.processing_status is D.READY, (file.filename, document)
            assert document.processing_error is None
            assert document.chunk_count == file.chunk_count(config), file.filename
            assert place.chunk_rows(document.id) == document.chunk_count
            assert document.metadata["pages"] == file.pages
            assert document.metadata["characters"] >= len(file.text or "")
            assert document.metadata["embedding_model"] == "feature-hashing-256"
            assert document.metadata["duration_seconds"] >= 0
        else:
            assert document.processing_status is D.FAILED, (file.filename, document)
            assert document.processing_error is not None
            assert document.processing_error.startswith(file.error or ""), document
            assert "Traceback" not in document.processing_error
            assert "\n" not in document.processing_error
            assert place.chunk_rows(document.id) == 0
    html = next(d for d in settled if d.filename == "team.html")
    (only,) = place.container.chunk_index().chunks(html.id)
    assert "never indexed" not in only.text
    assert "Grace Hopper leads the compiler team" in only.text

    # Structured logs: every line one JSON object; each document's lines carry its id and
    # the id of the event that asked for the work.
    lines = [json.loads(line) for line in worker.log().splitlines() if line.strip()]
    for document in settled:
        mine = [line for line in lines if line.get("document_id") == document.id]
        assert mine, document.filename
        assert all(len(line["event_id"]) == 32 for line in mine)


def test_two_ingestion_workers_share_fifty_documents_each_processed_once(
    place: Deployment,
) -> None:
    workspace = place.ready_workspace(8201)
    ingestion = place.processes.workers("ingestion", "ingestion", "embeddings")[:2]
    uploaded = [
        place.upload(workspace, f"note-{n}.md", prose(400, seed=100 + n).encode())
        for n in range(50)
    ]
    settled = place.settled([d.id for d in uploaded], timeout=SETTLE_SECONDS)
    for document in settled:
        assert document.processing_status is D.READY, document
        assert document.chunk_count > 0
        assert place.chunk_rows(document.id) == document.chunk_count
        assert document.version == ONCE_WITHOUT_GRAPH, document
    done = [w.log().count("stage ingestion done: processing") for w in ingestion]
    assert sum(done) == 50, done
    assert all(count > 0 for count in done), done  # both competed for the work


def test_sigterm_during_a_job_finishes_it_and_exits_0(place: Deployment) -> None:
    workspace = place.ready_workspace(8301)
    place.processes.worker("ingestion")
    victim = place.processes.worker("embeddings")
    document = place.upload(workspace, "long.txt", big_text(2.5))
    place.wait_for(
        document.id,
        lambda d: state_of(d.progress, EMBEDDING) is StepState.ACTIVE,
        timeout=60,
        what="embeddings under way",
    )
    assert victim.terminate(timeout=30) == 0, victim.log()
    assert "worker stopped" in victim.log()
    done = place.document(document.id)
    # Finished by the worker that was told to stop, not left for another one.
    assert done.processing_status is D.READY, done
    assert done.version == ONCE_WITHOUT_GRAPH
    assert place.chunk_rows(document.id) == done.chunk_count


def test_sigterm_past_the_stop_bound_exits_and_the_job_is_taken_up_again(
    place: Deployment,
) -> None:
    workspace = place.ready_workspace(8302)
    place.processes.worker("ingestion", environ=SHORT_LEASE)
    victim = place.processes.worker("embeddings", "--stop-timeout", "0.2", environ=SHORT_LEASE)
    document = place.upload(workspace, "long.txt", big_text(2.5))
    place.wait_for(
        document.id,
        lambda d: state_of(d.progress, EMBEDDING) is StepState.ACTIVE,
        timeout=60,
        what="embeddings under way",
    )
    assert victim.terminate(timeout=15) == 0, victim.log()
    assert "did not finish within --stop-timeout" in victim.log()
    assert state_of(place.document(document.id).progress, INDEXING) is not StepState.COMPLETED

    place.processes.worker("embeddings", environ=SHORT_LEASE)
    (done,) = place.settled([document.id], timeout=60)
    assert done.processing_status is D.READY, done.processing_error
    assert place.chunk_rows(document.id) == done.chunk_count


def test_the_provisioning_worker_applies_the_owners_defaults_or_reports_bad_ones(
    place: Deployment,
) -> None:
    rag_configs = place.container.rag_configs()
    chosen = RagConfig(chunk_size=400, chunk_overlap=40, graph_enabled=True)
    rag_configs.set_defaults(8401, chosen)
    rag_configs.set_defaults(8402, RagConfig(chunk_size=10, chunk_overlap=0))
    place.processes.worker("provisioning")
    workspaces = place.container.workspaces()
    created = [workspaces.create(user_id=user, name="Reports") for user in (8401, 8402, 8403)]
    ids = [c.value.id for c in created if isinstance(c, Ok)]
    assert len(ids) == 3

    def settled() -> list[W] | None:
        found = [place.container.repository().get_workspace(i) for i in ids]
        statuses = [w.status for w in found if w is not None]
        return statuses if W.PROVISIONING not in statuses else None

    assert wait_until(settled, timeout=30, what="provisioned") == [W.READY, W.ERROR, W.READY]
    assert rag_configs.for_workspace(ids[0]) == chosen
    bad = place.container.repository().get_workspace(ids[1])
    assert bad is not None
    assert bad.status_message == (
        "invalid processing settings: chunk_size must be between 50 and 100000, not 10"
    )
    assert rag_configs.for_workspace(ids[1]) is None
    assert rag_configs.for_workspace(ids[2]) == RagConfig()  # built-in defaults


def test_start_up_gives_up_on_an_unreachable_database_or_broker_with_one_line(
    place: Deployment,
) -> None:
    nowhere = free_port()
    no_database = place.processes.start(
        "worker",
        "ingestion",
        "--startup-timeout",
        "4",
        environ={"DATABASE_URL": f"postgresql+psycopg://root@127.0.0.1:{nowhere}/test"},
    )
    no_broker = place.processes.start(
        "worker",
        "ingestion",
        "--startup-timeout",
        "4",
        environ={"RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{nowhere}/%2F"},
    )
    expected = [
        (
            no_database,
            f"cannot start: database: DATABASE_URL: cannot connect to postgresql+psycopg://root@127.0.0.1:{nowhere}/test",
        ),
        (no_broker, f"cannot start: broker: cannot reach rabbitmq at 127.0.0.1:{nowhere}"),
    ]
    for process, line in expected:
        assert process.wait_exit(timeout=30) == 1
        output = process.log()
        assert "Traceback" not in output
        last = output.strip().splitlines()[-1]
        assert line in last, output
        assert "waiting for dependencies" in output  # it retried before giving up


def test_a_database_that_comes_back_during_start_up_is_waited_for(
    place: Deployment, tmp_path: Path
) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxy.cut()
        database_url = place.environ["DATABASE_URL"].replace(
            "127.0.0.1:5432", f"127.0.0.1:{proxy.port}"
        )
        waiting = place.processes.start(
            "worker",
            "provisioning",
            "--startup-timeout",
            "60",
            "--health-file",
            str(tmp_path / "alive"),
            environ={"DATABASE_URL": database_url},
        )
        wait_until(
            lambda: "waiting for dependencies: database" in waiting.log(),
            timeout=30,
            what="a failed first attempt",
        )
        assert not (tmp_path / "alive").exists()
        proxy.restore()
        wait_until(lambda: "worker started" in waiting.log(), timeout=30, what="start")
        assert waiting.terminate() == 0


def test_the_health_file_is_touched_while_running_and_removed_on_exit(
    place: Deployment, tmp_path: Path
) -> None:
    health = tmp_path / "alive"
    worker = place.processes.worker("ingestion", "--health-file", str(health))
    first = wait_until(lambda: health.exists() and health.stat().st_mtime, timeout=10)
    wait_until(lambda: health.stat().st_mtime > first, timeout=10, what="a fresh touch")
    assert worker.terminate() == 0
    assert not health.exists()


def test_a_step_past_its_limits_fails_naming_them_and_the_worker_goes_on(
    place: Deployment,
) -> None:
    workspace = place.ready_workspace(8107)
    place.processes.worker(
        "ingestion", environ={"EXTRACT_MAX_CHARS": "5000", "EXTRACT_MAX_PAGES": "3"}
    )
    too_long = place.upload(workspace, "too-long.txt", prose(words=2000).encode())
    too_many_pages = place.upload(
        workspace, "pages.pdf", pdf_with_pages([[f"page {n}"] for n in range(5)])
    )
    fine = place.upload(workspace, "fine.txt", prose(words=300).encode())
    long_doc, pdf_doc = place.settled([too_long.id, too_many_pages.id], timeout=SETTLE_SECONDS)
    assert long_doc.processing_status is D.FAILED
    assert long_doc.processing_error == (
        "Parsing failed: text extraction exceeded its text limit of 5,000 characters"
    )
    assert pdf_doc.processing_status is D.FAILED
    assert pdf_doc.processing_error == (
        "Parsing failed: text extraction exceeded its page limit of 3 pages"
    )
    # The same worker process takes the next job as usual.
    wait_until(
        lambda: state_of(place.document(fine.id).progress, CHUNKING) is StepState.COMPLETED,
        timeout=SETTLE_SECONDS,
    )
