"""The seed's RabbitMQ integration test, against the real server: a status change is published."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from adapters.memory.repository import InMemoryStatusRepository
from adapters.rabbitmq import RabbitMQPublisher
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.contracts.test_rabbitmq_broker import delete_topology

pytestmark = pytest.mark.rabbitmq

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class StatusQueue:
    """A private queue bound to the status routing keys, read one JSON body at a time."""

    def __init__(self, exchange: str, *routing_keys: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        self._channel = self._connection.channel()
        self._channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._queue = declared.method.queue
        for key in routing_keys:
            self._channel.queue_bind(self._queue, exchange, routing_key=key)

    def get_next_message(self, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, body = self._channel.basic_get(self._queue, auto_ack=True)
            if method is not None:
                parsed: dict[str, Any] = json.loads(body)
                return parsed
            self._connection.sleep(0.05)
        raise AssertionError(f"no message on the status queue within {timeout}s")

    def close(self) -> None:
        self._connection.close()


@pytest.fixture
def exchange() -> Iterator[str]:
    name = f"test-seed-{uuid.uuid4().hex}"
    yield name
    delete_topology(name)


@pytest.fixture
def rabbitmq(exchange: str) -> Iterator[StatusQueue]:
    queue = StatusQueue(exchange, "document.status.updated", "workspace.status.updated")
    yield queue
    queue.close()


@pytest.fixture
def publisher(exchange: str) -> Iterator[RabbitMQPublisher]:
    publisher = RabbitMQPublisher(rabbitmq_url=RABBITMQ_URL, exchange=exchange)
    yield publisher
    publisher.close()


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
