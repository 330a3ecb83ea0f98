"""The AsyncAPI document: generated from the event classes, current, and true of real traffic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from adapters.bootstrap import WORKER_KINDS, Services, bootstrap
from adapters.memory.broker import InMemoryBroker
from application.worker import Worker
from domain.events import (
    EVENT_TYPES,
    WORK_QUEUES,
    DocumentStatusUpdated,
    Event,
    StatusEvent,
    decode,
    encode,
)
from domain.ports import MessagePublisher
from entrypoints.asyncapi import (
    DOCS_DIR,
    GENERATED,
    asyncapi_document,
    envelope_schema,
    frame_schemas,
)
from entrypoints.server.hub import event_frame
from entrypoints.server.snapshots import Snapshot

GOOD_TEXT = b"Status tracking keeps every change versioned and pushed live. " * 40
BROKEN_PDF = b"%PDF-1.4\n% not a real PDF body\n%%EOF\n"


class RecordingPublisher(MessagePublisher):
    """Passes every event on, keeping the exact wire body each one had."""

    def __init__(self, inner: MessagePublisher) -> None:
        self._inner = inner
        self.bodies: list[bytes] = []

    def publish(self, event: Event) -> None:
        self.bodies.append(encode(event))
        self._inner.publish(event)

    def close(self) -> None:
        self._inner.close()


def _validator(schema: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def _drain(services: Services) -> None:
    """Run every kind of worker until no queue has work left."""
    broker = services.broker
    workers = [
        Worker(broker.work_queue(kind, WORK_QUEUES[kind]), services.handlers_for(kind))
        for kind in WORKER_KINDS
    ]
    # Every worker takes a turn each round (a list, not a short-circuiting generator).
    while sum([worker.run_once(timeout=0.01) for worker in workers]):
        pass


@pytest.fixture(scope="module")
def traffic() -> Iterator[tuple[Services, RecordingPublisher, list[StatusEvent]]]:
    broker = InMemoryBroker()
    recording = RecordingPublisher(broker.publisher())
    services = bootstrap(
        {"DATABASE_URL": "memory://", "TRANSPORT": "memory"},
        overrides={"broker": broker, "publisher": recording},
    )
    heard: list[StatusEvent] = []
    subscription = services.broker.subscribe_status(heard.append)
    workspaces, documents = services.workspaces, services.documents
    workspace = workspaces.create(user_id=5, name="Reports").unwrap()
    _drain(services)
    for name, content in (("notes.txt", GOOD_TEXT), ("broken.pdf", BROKEN_PDF)):
        documents.upload(user_id=5, workspace_id=workspace.id, filename=name, content=[content])
    _drain(services)
    failed = next(d for d in documents.list(user_id=5).unwrap() if d.filename == "broken.pdf")
    documents.retry(user_id=5, document_id=failed.id).unwrap()
    _drain(services)
    yield services, recording, heard
    subscription.close()
    services.close()
    broker.close()


def test_the_committed_documents_are_what_the_generator_writes_now() -> None:
    for name, render in GENERATED.items():
        committed = (DOCS_DIR / name).read_text(encoding="utf-8")
        assert committed == render(), f"docs/{name} is stale: run python -m entrypoints.asyncapi"


def test_the_document_is_asyncapi_3_with_every_event_and_every_reference_resolving() -> None:
    document = json.loads(json.dumps(asyncapi_document()))
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert set(EVENT_TYPES) | {"/ws"} <= addresses

    def references(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    for reference in references(document):
        target: Any = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), reference
    for schema in document["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


def test_every_event_of_a_memory_flow_matches_its_schema(
    traffic: tuple[Services, RecordingPublisher, list[StatusEvent]],
) -> None:
    _, recording, _ = traffic
    seen = set()
    for body in recording.bodies:
        routing_key = decode(body).routing_key
        _validator(envelope_schema(EVENT_TYPES[routing_key])).validate(json.loads(body))
        seen.add(routing_key)
    # The flow reached every kind of event but the graph stage's (graph is off by default).
    assert seen >= set(EVENT_TYPES) - {"document.embedded"}


def test_every_frame_a_socket_would_get_matches_its_schema(
    traffic: tuple[Services, RecordingPublisher, list[StatusEvent]],
) -> None:
    services, _, heard = traffic
    schemas = frame_schemas()
    assert heard
    for event in heard:
        frame = json.loads(event_frame(event))
        _validator(schemas[frame["type"]]).validate(frame)
    snapshot = Snapshot(
        documents=services.documents.list(user_id=5).unwrap(),
        workspaces=services.workspaces.list(user_id=5),
    )
    frame = json.loads(snapshot.frame)
    assert frame["documents"]
    assert frame["workspaces"]
    _validator(schemas["snapshot"]).validate(frame)


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.pop("version"),
        lambda m: m.update(status="exploded"),
        lambda m: m.update(document_id="7"),
        lambda m: m.update(unexpected=1),
        lambda m: m["progress"].append({"label": "x"}),
    ],
)
def test_a_damaged_event_fails_its_schema(
    traffic: tuple[Services, RecordingPublisher, list[StatusEvent]], damage: Any
) -> None:
    _, recording, _ = traffic
    body = next(
        json.loads(b)
        for b in recording.bodies
        if decode(b).routing_key == DocumentStatusUpdated.routing_key
    )
    damage(body["message"])
    with pytest.raises(ValidationError):
        _validator(envelope_schema(DocumentStatusUpdated)).validate(body)
