"""The outbox in memory and the relay: nothing lost, per-entity order, duplicates only on crash."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from adapters.container import build_container, close_container
from adapters.memory.outbox import InMemoryOutbox
from adapters.memory.repository import InMemoryStatusRepository
from application.relay import OutboxRelay
from application.status_service import StatusService
from domain.errors import PublishFailed
from domain.events import DocumentStatusUpdated, Event, StatusEvent
from domain.ports.outbox import OutboxEntry
from domain.progress import Progress
from tests.contracts.broker import wait_for
from tests.fakes.messaging import FlakyPublisher, RecordingPublisher


def changes(outbox: InMemoryOutbox, documents: int = 3, updates: int = 5) -> list[int]:
    repository = InMemoryStatusRepository(outbox=outbox)
    service = StatusService(repository, None)
    ids = []
    for _ in range(documents):
        document = repository.add_document(
            user_id=1, workspace_id=1, filename="a", storage_key="k", progress=Progress()
        )
        ids.append(document.id)
    for _ in range(updates):
        for document_id in ids:
            service.update_document_status(document_id, "processing").unwrap()
    return ids


def versions_by_document(events: Sequence[Event]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for event in events:
        assert isinstance(event, DocumentStatusUpdated)
        seen.setdefault(event.document_id, []).append(event.version)
    return seen


def test_every_change_is_recorded_and_relayed_in_order() -> None:
    outbox = InMemoryOutbox()
    ids = changes(outbox)
    publisher = RecordingPublisher()
    relay = OutboxRelay(outbox, publisher, batch_size=4)
    while relay.relay_once():
        pass
    assert outbox.unsent() == 0
    assert versions_by_document(publisher.events) == {i: [1, 2, 3, 4, 5, 6] for i in ids}


def test_a_failed_publish_marks_nothing_and_is_offered_again() -> None:
    outbox = InMemoryOutbox()
    changes(outbox, documents=1, updates=2)
    publisher = FlakyPublisher(failures=1)
    relay = OutboxRelay(outbox, publisher, batch_size=10)
    assert relay.relay_once() == 0
    assert outbox.unsent() == 3
    assert relay.relay_once() == 3
    assert outbox.unsent() == 0
    assert len(publisher.events) == 3


def test_a_crash_between_publish_and_mark_sent_publishes_again_never_loses() -> None:
    outbox = InMemoryOutbox()
    changes(outbox, documents=1, updates=1)
    published: list[OutboxEntry] = []

    def publish_then_die(entries: Sequence[OutboxEntry]) -> None:
        published.extend(entries)
        raise PublishFailed("connection lost before the batch was marked")

    with pytest.raises(PublishFailed):
        outbox.relay(publish_then_die, limit=10)
    assert outbox.unsent() == 2
    again: list[OutboxEntry] = []
    outbox.relay(again.extend, limit=10)
    assert [e.event_id for e in again] == [e.event_id for e in published]
    assert outbox.unsent() == 0


def test_two_relays_keep_per_entity_order() -> None:
    outbox = InMemoryOutbox()
    ids = changes(outbox, documents=4, updates=25)
    delivered: list[Event] = []
    lock = threading.Lock()

    class Sink(RecordingPublisher):
        def publish(self, event: Event) -> None:
            with lock:
                delivered.append(event)

    relays = [OutboxRelay(outbox, Sink(), batch_size=3) for _ in range(2)]

    def drain(relay: OutboxRelay) -> None:
        while outbox.unsent():
            relay.relay_once()

    threads = [threading.Thread(target=drain, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert versions_by_document(delivered) == {i: list(range(1, 27)) for i in ids}


def test_the_container_wires_outbox_delivery_end_to_end() -> None:
    container, _ = build_container(
        {"DATABASE_URL": "memory://", "TRANSPORT": "memory", "DELIVERY": "outbox"}
    )
    heard: list[StatusEvent] = []
    subscription = container.broker().subscribe_status(heard.append)
    assert container.status_service().publisher is None
    workspace = container.workspaces().create(user_id=1, name="w").unwrap()
    container.status_service().update_workspace_status(workspace.id, "ready").unwrap()
    assert heard == []  # nothing leaves before the relay runs
    assert container.relay().relay_once() == 2
    wait_for(lambda: len(heard) >= 2, 5, "the relayed events")
    assert [(e.routing_key, e.version) for e in heard] == [
        ("workspace.status.updated", 1),
        ("workspace.status.updated", 2),
    ]
    subscription.close()
    close_container(container)
