"""The trace context at the top level of status frames, live and behind a resumed answer."""

from __future__ import annotations

import dataclasses
import json

import pytest
from jsonschema import Draft7Validator, ValidationError

from domain.changes import DocumentStatusChange
from domain.entities import Document
from domain.events import StatusEvent, status_event_for
from domain.status import DocumentProcessingStatus
from entrypoints.asyncapi import frame_schemas
from entrypoints.server.hub import event_frame
from tests.unit.test_hub import settle
from tests.unit.test_scoped_hub import USER, World, run, syncs

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def changed(world: World, document: Document) -> Document:
    current = world.repository.get_document(document.id)
    assert current is not None
    return world.repository.update_document_status(
        DocumentStatusChange(
            document_id=document.id,
            status=DocumentProcessingStatus.PROCESSING,
            progress=current.progress,
        )
    ).unwrap()


def test_a_traced_frame_has_its_traceparent_beside_the_data_and_matches_its_schema() -> None:
    world = World()
    workspace = world.workspace()
    document = world.document(workspace)
    schemas = frame_schemas()
    events: list[StatusEvent] = [
        status_event_for(document, traceparent=PARENT),
        status_event_for(workspace, traceparent=PARENT),
    ]
    for event in events:
        frame = json.loads(event_frame(event, "epoch"))
        assert list(frame)[:2] == ["type", "traceparent"]
        # Kept inside the event too, for the clients that read it there.
        assert frame["traceparent"] == frame["data"]["traceparent"] == PARENT
        Draft7Validator(schemas[frame["type"]]).validate(frame)
        with pytest.raises(ValidationError):
            Draft7Validator(schemas[frame["type"]]).validate({**frame, "traceparent": "nonsense"})


def test_an_untraced_frame_is_as_before() -> None:
    world = World()
    document = world.document(world.workspace())
    frame = json.loads(event_frame(status_event_for(document)))
    assert "traceparent" not in frame
    assert frame["data"]["traceparent"] is None
    Draft7Validator(frame_schemas()["document_status"]).validate(frame)
    with_trace = dataclasses.replace(status_event_for(document), traceparent=PARENT)
    assert json.loads(event_frame(with_trace))["traceparent"] == PARENT


def test_deltas_held_behind_a_resumed_answer_keep_their_traceparent() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspace = world.workspace()
        documents = [world.document(workspace) for _ in range(3)]
        first = world.connect([f"workspace:{workspace.id}"])
        await settle()
        cursor = syncs(first)[-1]["cursor"]
        changed(world, documents[0])
        # Resumes; the traced change dispatched meanwhile waits behind the answer.
        socket = world.connect([f"workspace:{workspace.id}"], cursor)
        # A change committed after the answer's read: newer than anything the answer holds.
        newer = dataclasses.replace(documents[1], version=documents[1].version + 5)
        world.hub.dispatch(status_event_for(newer, traceparent=PARENT))
        await settle()
        frames = socket.decoded()
        (answer,) = [f for f in frames if f["type"] == "sync"]
        assert answer["mode"] == "resumed"
        # An answer holds entities as they stand, which carry no trace context of their own.
        assert "traceparent" not in answer
        (delta,) = [f for f in frames if f["type"] == "document_status"]
        assert frames.index(delta) > frames.index(answer)
        assert delta["data"]["document_id"] == documents[1].id
        assert delta["traceparent"] == PARENT
        assert delta["data"]["user_id"] == USER

    run(scenario)
