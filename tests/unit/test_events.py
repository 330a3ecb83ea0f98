"""Events and the one wire format every transport shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.entities import Document, Workspace
from domain.errors import MalformedMessage
from domain.events import (
    MAX_BODY_BYTES,
    DocumentStatusUpdated,
    DocumentUploaded,
    WorkspaceCreated,
    WorkspaceStatusUpdated,
    decode,
    encode,
    entity_key,
    status_event_for,
)
from domain.progress import Progress, StepState
from domain.status import DocumentProcessingStatus, WorkspaceStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ENVELOPE = (
    b'{"schema": 1, "routing_key": "document.uploaded", "event_id": "e1",'
    b' "occurred_at": "2026-01-02T03:04:05+00:00", '
)


def a_document(**changes: object) -> Document:
    values: dict[str, object] = {
        "id": 5,
        "user_id": 9,
        "workspace_id": 2,
        "filename": "a.pdf",
        "storage_key": "2/x.pdf",
        "processing_status": DocumentProcessingStatus.FAILED,
        "processing_error": "Parsing failed: the PDF is encrypted",
        "chunk_count": 0,
        "metadata": {"pages": 3},
        "progress": Progress.plan(["Parsing", "Chunking text"]).fail("Parsing"),
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Document(**values)  # type: ignore[arg-type]


def test_status_event_of_a_document_carries_what_the_seeds_server_reads() -> None:
    event = status_event_for(a_document())
    assert isinstance(event, DocumentStatusUpdated)
    message = event.to_message()
    assert event.routing_key == "document.status.updated"
    assert message["document_id"] == 5
    assert message["user_id"] == 9
    assert message["status"] == "failed"
    assert message["error"] == "Parsing failed: the PDF is encrypted"
    assert message["version"] == 3
    assert message["progress"][0] == {"label": "Parsing", "completed": False, "state": "failed"}
    assert message["event_id"] == event.event_id
    assert entity_key(event) == ("document", 5)


def test_status_event_of_a_workspace() -> None:
    workspace = Workspace(
        id=4,
        user_id=9,
        name="w",
        status=WorkspaceStatus.ERROR,
        status_message="disk full",
        version=2,
        created_at=NOW,
        updated_at=NOW,
    )
    event = status_event_for(workspace)
    assert isinstance(event, WorkspaceStatusUpdated)
    assert event.routing_key == "workspace.status.updated"
    assert event.to_message()["message"] == "disk full"
    assert entity_key(event) == ("workspace", 4)


@pytest.mark.parametrize(
    "event",
    [
        status_event_for(a_document()),
        WorkspaceStatusUpdated(
            workspace_id=1,
            user_id=2,
            name="n",
            status=WorkspaceStatus.READY,
            message=None,
            version=2,
        ),
        DocumentUploaded(document_id=1, user_id=2, workspace_id=3, file_path="/x", version=1),
        WorkspaceCreated(workspace_id=1, user_id=2, name="ws", version=1),
    ],
)
def test_every_event_survives_the_wire(event: DocumentUploaded) -> None:
    body = encode(event)
    envelope = json.loads(body)
    assert envelope["schema"] == 1
    assert envelope["routing_key"] == event.routing_key
    assert envelope["event_id"] == event.event_id
    assert decode(body) == event


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema": 2, "routing_key": "document.uploaded", "message": {}}', "schema"),
        (b'{"schema": 1, "routing_key": "nope", "message": {}}', "unknown routing key"),
        (b'{"schema": 1, "routing_key": "document.uploaded", "message": {}}', "'event_id'"),
        (ENVELOPE + b'"message": 3}', "'message'"),
        (ENVELOPE + b'"message": {}}', "missing field"),
        (b"\xff\xfe", "not JSON"),
        (b" " * (MAX_BODY_BYTES + 1), "exceeds"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(body)


def test_wrong_field_types_are_refused() -> None:
    good = json.loads(encode(status_event_for(a_document())))
    for field, value in [
        ("version", "3"),
        ("status", "exploded"),
        ("document_id", True),
        ("progress", "all done"),
        ("metadata", [1]),
    ]:
        broken = {**good, "message": {**good["message"], field: value}}
        with pytest.raises(MalformedMessage, match=field):
            decode(json.dumps(broken).encode())


def test_progress_round_trips_and_rejects_nonsense() -> None:
    progress = Progress.plan(["a", "b", "c"]).complete("a").begin("b")
    assert Progress.from_json(progress.to_json()) == progress
    assert progress.current == "b"
    assert progress.completed_count == 1
    assert not progress.is_complete
    assert Progress.from_json([{"label": "x", "completed": True}]).steps[0].state is (
        StepState.COMPLETED
    )
    with pytest.raises(ValueError, match="unknown step"):
        progress.begin("z")
    with pytest.raises(ValueError, match="unique"):
        Progress.plan(["a", "a"])
