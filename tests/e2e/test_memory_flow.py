"""The whole flow in one process: the wiring, use cases, in-process workers, status broadcast."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from adapters.bootstrap import Services
from adapters.container import Container, build_container
from domain.events import DocumentStatusUpdated, StatusEvent, WorkspaceStatusUpdated
from entrypoints.runtime import WORKER_KINDS, start_worker_threads

STEPS = ["Parsing", "Chunking text", "Generating embeddings", "Indexing to vector store"]


@pytest.fixture
def system() -> Iterator[tuple[Container, list[StatusEvent]]]:
    # The container itself too, for a look into the chunk index that no entrypoint needs.
    container, settings = build_container({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    services = Services(container, settings)
    heard: list[StatusEvent] = []
    subscription = services.broker.subscribe_status(heard.append)
    stop = threading.Event()
    threads = start_worker_threads(services, WORKER_KINDS, stop)
    yield container, heard
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    subscription.close()
    services.close()


def wait_until(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def document_trail(heard: list[StatusEvent], document_id: int) -> list[tuple[str, str | None, int]]:
    return [
        (e.status.value, e.progress.current, e.version)
        for e in list(heard)
        if isinstance(e, DocumentStatusUpdated) and e.document_id == document_id
    ]


def test_upload_to_ready_and_to_failed_with_the_exact_event_sequence(
    system: tuple[Container, list[StatusEvent]],
) -> None:
    container, heard = system
    workspace = container.workspaces().create(user_id=7, name="Research").unwrap()
    wait_until(
        lambda: any(
            isinstance(e, WorkspaceStatusUpdated) and e.status.value == "ready" for e in heard
        )
    )
    assert [
        (e.status.value, e.version) for e in heard if isinstance(e, WorkspaceStatusUpdated)
    ] == [("provisioning", 1), ("ready", 2)]

    documents = container.documents()
    good = documents.upload(
        user_id=7,
        workspace_id=workspace.id,
        filename="notes.md",
        content=[b"# Notes\n\n", b"Status tracking keeps the page equal to the database. " * 40],
    ).unwrap()
    bad = documents.upload(
        user_id=7, workspace_id=workspace.id, filename="scan.pdf", content=[b"%PDF-1.4 broken"]
    ).unwrap()
    assert good.processing_status.value == "pending"

    def settled(document_id: int) -> bool:
        trail = document_trail(heard, document_id)
        return bool(trail) and trail[-1][0] in {"ready", "failed"}

    wait_until(lambda: settled(good.id) and settled(bad.id))

    assert document_trail(heard, good.id) == [
        ("pending", None, 1),
        ("processing", STEPS[0], 2),
        ("processing", STEPS[1], 3),
        ("processing", None, 4),  # ingestion recorded, handed on to the embeddings stage
        ("processing", STEPS[2], 5),
        ("processing", STEPS[3], 6),
        ("ready", None, 7),
    ]
    assert document_trail(heard, bad.id) == [
        ("pending", None, 1),
        ("processing", STEPS[0], 2),
        ("failed", None, 3),
    ]
    stored = container.repository().get_document(good.id)
    assert stored is not None
    assert stored.chunk_count > 1
    assert stored.chunk_count == container.chunk_index().count(good.id)
    assert stored.metadata["embedding_model"] == "feature-hashing-256"
    failed = container.repository().get_document(bad.id)
    assert failed is not None
    assert failed.processing_error is not None
    assert failed.processing_error.startswith("Parsing failed: the PDF is corrupt")

    # Retry goes back through the whole pipeline and fails again, versions still rising.
    retried = documents.retry(user_id=7, document_id=bad.id).unwrap()
    assert (retried.processing_status.value, retried.version) == ("pending", 4)
    wait_until(lambda: document_trail(heard, bad.id)[-1] == ("failed", None, 6))
