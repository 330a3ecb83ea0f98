"""The seed's integration test as it is written there: a real database and real RabbitMQ."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from adapters.rabbitmq import RabbitMQPublisher
from adapters.sql.repository import SqlStatusRepository
from application.status_service import StatusService
from domain.status import DocumentProcessingStatus
from tests.integration.test_sql_repository import create_test_document
from tests.support.rabbitmq import StatusQueue

pytestmark = pytest.mark.rabbitmq


def test_worker_updates_status(
    db: Session, rabbitmq: StatusQueue, publisher: RabbitMQPublisher
) -> None:
    # Test with real database and RabbitMQ
    repo = SqlStatusRepository(db)
    service = StatusService(repo, publisher)

    # Create test document
    doc = create_test_document(db, status="pending")

    # Update status
    result = service.update_document_status(
        document_id=doc.id, status=DocumentProcessingStatus.PROCESSING
    )
    assert result.is_ok()

    # Verify database updated
    db.refresh(doc)
    assert doc.processing_status == "processing"

    # Verify event published
    event = rabbitmq.get_next_message()
    assert event["routing_key"] == "document.status.updated"
    assert event["message"]["document_id"] == doc.id
    assert event["message"]["version"] == doc.version == 2
