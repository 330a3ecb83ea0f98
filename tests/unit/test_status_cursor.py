"""The change cursor: positions on entities and in status events, and the store's epoch."""

from __future__ import annotations

import json

import pytest

from adapters.memory.outbox import InMemoryOutbox
from adapters.memory.repository import InMemoryStatusRepository
from application.status_service import StatusService
from domain.entities import NO_POSITION
from domain.errors import MalformedMessage
from domain.events import (
    DocumentStatusUpdated,
    WorkspaceStatusUpdated,
    decode,
    encode,
    status_event_for,
)
from domain.progress import Progress
from tests.fakes.messaging import RecordingPublisher


def _service() -> tuple[StatusService, RecordingPublisher, InMemoryOutbox]:
    outbox = InMemoryOutbox()
    publisher = RecordingPublisher()
    return StatusService(InMemoryStatusRepository(outbox), publisher), publisher, outbox


def test_events_carry_the_position_of_the_stored_entity() -> None:
    service, publisher, outbox = _service()
    workspace = service.repository.add_workspace(user_id=1, name="w")
    document = service.repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a", storage_key="k", progress=Progress()
    )
    moved = service.update_document_status(document_id=document.id, status="processing").unwrap()
    ready = service.update_workspace_status(workspace_id=workspace.id, status="ready").unwrap()
    direct = [event.to_message()["position"] for event in publisher.events]
    assert direct == [moved.position, ready.position]
    recorded = [decode(row.entry.body).to_message()["position"] for row in outbox.rows]
    assert recorded == [workspace.position, document.position, moved.position, ready.position]
    assert recorded == sorted(set(recorded))


def test_the_position_goes_over_the_wire_and_back() -> None:
    service, publisher, _ = _service()
    workspace = service.repository.add_workspace(user_id=1, name="w")
    service.update_workspace_status(workspace_id=workspace.id, status="ready").unwrap()
    (event,) = publisher.events
    assert isinstance(event, WorkspaceStatusUpdated)
    again = decode(encode(event))
    assert again == event
    assert isinstance(again, WorkspaceStatusUpdated)
    assert again.position == workspace.position + 1


@pytest.mark.parametrize("kind", ["document", "workspace"])
def test_an_event_sent_before_positions_existed_still_decodes(kind: str) -> None:
    service, _, _ = _service()
    workspace = service.repository.add_workspace(user_id=1, name="w")
    entity = (
        service.repository.add_document(
            user_id=1, workspace_id=workspace.id, filename="a", storage_key="k", progress=Progress()
        )
        if kind == "document"
        else workspace
    )
    envelope = json.loads(encode(status_event_for(entity)))
    del envelope["message"]["position"]
    old = decode(json.dumps(envelope))
    assert isinstance(old, DocumentStatusUpdated | WorkspaceStatusUpdated)
    assert old.position == NO_POSITION
    assert old.version == entity.version


def test_a_position_that_is_not_an_integer_is_malformed() -> None:
    service, _, _ = _service()
    workspace = service.repository.add_workspace(user_id=1, name="w")
    envelope = json.loads(encode(status_event_for(workspace)))
    envelope["message"]["position"] = "7"
    with pytest.raises(MalformedMessage, match="position"):
        decode(json.dumps(envelope))


def test_every_memory_store_has_its_own_epoch() -> None:
    first, second = InMemoryStatusRepository(), InMemoryStatusRepository()
    assert first.epoch() != second.epoch()
    assert first.epoch() == first.epoch()
