"""The seed's RabbitMQ integration test, against the real server: a status change is published."""

from __future__ import annotations

import pytest

from adapters.memory.repository import InMemoryStatusRepository
from adapters.rabbitmq import RabbitMQPublisher
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.support.rabbitmq import StatusQueue

pytestmark = pytest.mark.rabbitmq


def test_publisher_sends_a_document_status_event(
    publisher: RabbitMQPublisher, rabbitmq: StatusQueue
) -> None:
    event = DocumentStatusUpdated(
        document_id=42,
        user_id=7,
        workspace_id=3,
        filename="report.pdf",
        status=DocumentProcessingStatus.PROCESSING,
        error=None,
        chunk_count=0,
        metadata={},
        progress=Progress.plan(["Parsing PDF"]).begin("Parsing PDF"),
        version=2,
    )

    publisher.publish(event)

    received = rabbitmq.get_next_message()
    assert received["routing_key"] == "document.status.updated"
    assert received["message"]["document_id"] == 42
    assert received["message"]["user_id"] == 7
    assert received["message"]["status"] == "processing"
    assert received["event_id"] == event.event_id


def test_worker_updates_status(publisher: RabbitMQPublisher, rabbitmq: StatusQueue) -> None:
    # The seed's own integration test, with an in-memory repository in place of its database.
    repo = InMemoryStatusRepository()
    service = StatusService(repo, publisher)

    workspace = repo.add_workspace(user_id=7, name="research")
    doc = repo.add_document(
        user_id=7,
        workspace_id=workspace.id,
        filename="paper.pdf",
        storage_key="k",
        progress=Progress.plan(["Parsing PDF"]),
    )

    result = service.update_document_status(
        document_id=doc.id, status=DocumentProcessingStatus.PROCESSING
    )

    assert result.is_ok()
    assert result.unwrap().processing_status == "processing"
    event = rabbitmq.get_next_message()
    assert event["routing_key"] == "document.status.updated"
    assert event["message"]["document_id"] == doc.id
    assert service.lost_events == 0


def test_workspace_status_event_carries_its_message(
    publisher: RabbitMQPublisher, rabbitmq: StatusQueue
) -> None:
    repo = InMemoryStatusRepository()
    service = StatusService(repo, publisher)
    workspace = repo.add_workspace(user_id=9, name="lab")

    result = service.update_workspace_status(
        workspace_id=workspace.id, status=WorkspaceStatus.ERROR, message="quota exceeded"
    )

    assert result.is_ok()
    event = rabbitmq.get_next_message()
    assert event["routing_key"] == "workspace.status.updated"
    assert event["message"]["workspace_id"] == workspace.id
    assert event["message"]["user_id"] == 9
    assert event["message"]["status"] == "error"
    assert event["message"]["message"] == "quota exceeded"
