"""The seed document's own unit tests, as written there apart from their imports."""

from __future__ import annotations

from application.status_service import StatusService
from domain.status import DocumentProcessingStatus
from tests.fakes.repository import DummyStatusRepository


def test_status_service_updates_document() -> None:
    # Use dummy repository
    repo = DummyStatusRepository()
    service = StatusService(repo, None)  # No publisher for unit test

    result = service.update_document_status(document_id=1, status=DocumentProcessingStatus.READY)

    assert result.is_ok()
    assert result.unwrap().processing_status == "ready"


def test_status_service_returns_error_for_missing_document() -> None:
    repo = DummyStatusRepository()  # Returns None
    service = StatusService(repo, None)

    result = service.update_document_status(document_id=999, status=DocumentProcessingStatus.READY)

    assert result.is_err()
    assert "not found" in result.error
