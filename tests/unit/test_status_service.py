from __future__ import annotations

from adapters.memory.repository import InMemoryStatusRepository
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated, WorkspaceStatusUpdated
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.fakes.messaging import FlakyPublisher, RecordingPublisher


def setup() -> tuple[InMemoryStatusRepository, int, int]:
    repository = InMemoryStatusRepository()
    workspace = repository.add_workspace(user_id=3, name="w")
    document = repository.add_document(
        user_id=3,
        workspace_id=workspace.id,
        filename="a.txt",
        storage_key="k",
        progress=Progress.plan(["Parsing"]),
    )
    return repository, workspace.id, document.id


def test_a_change_is_stored_and_announced_exactly_once() -> None:
    repository, _, document_id = setup()
    publisher = RecordingPublisher()
    service = StatusService(repository, publisher)
    result = service.update_document_status(
        document_id=document_id, status=DocumentProcessingStatus.PROCESSING
    )
    document = result.unwrap()
    assert document.version == 2
    assert repository.get_document(document_id) == document
    assert len(publisher.events) == 1
    event = publisher.events[0]
    assert isinstance(event, DocumentStatusUpdated)
    assert (event.document_id, event.user_id, event.status, event.version) == (
        document_id,
        3,
        DocumentProcessingStatus.PROCESSING,
        2,
    )


def test_the_seeds_ready_call_stores_chunk_count_and_metadata() -> None:
    repository, _, document_id = setup()
    service = StatusService(repository, None)
    service.update_document_status(document_id=document_id, status="processing")
    result = service.update_document_status(
        document_id=document_id,
        status=DocumentProcessingStatus.READY,
        chunk_count=12,
        metadata={"embedding_model": "nomic-embed-text"},
    )
    document = result.unwrap()
    assert (document.chunk_count, dict(document.metadata)) == (
        12,
        {"embedding_model": "nomic-embed-text"},
    )


def test_failed_keeps_the_error_and_a_later_retry_clears_it() -> None:
    repository, _, document_id = setup()
    service = StatusService(repository, None)
    failed = service.update_document_status(
        document_id=document_id, status=DocumentProcessingStatus.FAILED, error="boom"
    ).unwrap()
    assert failed.processing_error == "boom"
    retried = service.update_document_status(document_id, "pending", retry=True).unwrap()
    assert retried.processing_error is None
    assert retried.version == 3


def test_illegal_and_unknown_moves_are_errors_and_change_nothing() -> None:
    repository, workspace_id, document_id = setup()
    publisher = RecordingPublisher()
    service = StatusService(repository, publisher)
    before = repository.get_document(document_id)
    illegal = service.update_document_status(document_id, DocumentProcessingStatus.READY)
    assert illegal.is_err()
    assert "cannot go from 'pending' to 'ready'" in illegal.error
    unknown = service.update_document_status(document_id, "exploded")
    assert unknown.is_err()
    assert "unknown document status" in unknown.error
    retry_without_flag = service.update_workspace_status(workspace_id, WorkspaceStatus.READY)
    assert retry_without_flag.is_ok()
    again = service.update_workspace_status(workspace_id, WorkspaceStatus.PROVISIONING)
    assert again.is_err()
    assert repository.get_document(document_id) == before
    assert [type(e) for e in publisher.events] == [WorkspaceStatusUpdated]


def test_stale_writers_are_refused() -> None:
    repository, _, document_id = setup()
    service = StatusService(repository, None)
    service.update_document_status(document_id, "processing", expected_version=1).unwrap()
    stale = service.update_document_status(document_id, "processing", expected_version=1)
    assert stale.is_err()
    assert "stale" in stale.error


def test_missing_workspace_is_not_found() -> None:
    service = StatusService(InMemoryStatusRepository(), None)
    result = service.update_workspace_status(workspace_id=77, status=WorkspaceStatus.READY)
    assert result.is_err()
    assert "not found" in result.error


def test_a_briefly_failing_broker_is_retried() -> None:
    repository, _, document_id = setup()
    publisher = FlakyPublisher(failures=2)
    service = StatusService(repository, publisher, retry_delay=0)
    service.update_document_status(document_id, "processing").unwrap()
    assert publisher.attempts == 3
    assert len(publisher.events) == 1
    assert service.lost_events == 0


def test_a_publish_that_keeps_failing_is_counted_as_lost_but_the_change_stands() -> None:
    repository, _, document_id = setup()
    publisher = FlakyPublisher(failures=100)
    service = StatusService(repository, publisher, publish_attempts=3, retry_delay=0)
    result = service.update_document_status(document_id, "processing")
    assert result.is_ok()
    stored = repository.get_document(document_id)
    assert stored is not None
    assert stored.processing_status is DocumentProcessingStatus.PROCESSING
    assert publisher.attempts == 3
    assert service.lost_events == 1
