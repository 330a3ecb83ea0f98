"""AsyncAPI 3.0 and JSON Schema for every event and WebSocket frame, generated from the code.

Schemas are derived from the domain's event and entity dataclasses (their fields and type
hints), so a field added to an event appears here without being written twice. A type whose
wire form is not its fields (``Progress``) has one entry in ``WIRE_FORMS``.

WebSocket frames are listed in ``SERVER_FRAMES`` and ``CLIENT_FRAMES``: a new frame is one
more ``Frame`` entry. ``python -m entrypoints.asyncapi`` rewrites ``docs/asyncapi.json`` and
``docs/events.md``.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from domain.entities import Document, Workspace
from domain.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    DeliveryKind,
    DocumentStatusUpdated,
    Event,
    WorkspaceStatusUpdated,
)
from domain.progress import Progress, Step
from entrypoints.operations_json import STAGE_FIGURES_SCHEMA

Schema = dict[str, Any]
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"


def _enum(enum: type[Enum]) -> Schema:
    return {"type": "string", "enum": [member.value for member in enum]}


def _progress() -> Schema:
    step = object_schema(Step)
    step["properties"]["completed"] = {"type": "boolean"}
    # A step's times are sent once known, and left out (never null) until then.
    times = ("started_at", "finished_at")
    for name in times:
        step["properties"][name] = {"type": "string", "format": "date-time"}
    step["required"] = sorted({*step["required"], "completed"} - set(times))
    return {"type": "array", "items": step, "description": "The job's steps, in order."}


# Types whose JSON is not the object of their fields.
WIRE_FORMS: dict[type, Callable[[], Schema]] = {
    datetime: lambda: {"type": "string", "format": "date-time"},
    Progress: _progress,
}
_SCALARS: dict[object, Schema] = {
    int: {"type": "integer"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
    Any: {},
}


def type_schema(hint: object) -> Schema:
    """The JSON Schema of a value of type ``hint`` as ``to_message`` encodes it."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [type_schema(option) for option in typing.get_args(hint)]}
    if hint is type(None):
        return {"type": "null"}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    if isinstance(hint, type) and hint in WIRE_FORMS:
        return WIRE_FORMS[hint]()
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum(hint)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        args = typing.get_args(hint)
        values = type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": values}
    if origin in (list, tuple) or hint in (list, tuple):
        items = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return {"type": "array", "items": type_schema(items[0]) if items else {}}
    if isinstance(hint, type) and is_dataclass(hint):
        return object_schema(hint)
    raise TypeError(f"no JSON Schema for {hint!r}; add it to WIRE_FORMS")


def object_schema(cls: type, *, exclude: frozenset[str] = frozenset()) -> Schema:
    """A closed object schema of a dataclass's fields (every field present, nothing else)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.name not in exclude]
    schema: Schema = {
        "type": "object",
        "properties": {name: type_schema(hints[name]) for name in names},
        "required": sorted(names),
        "additionalProperties": False,
    }
    if description := _first_line(cls):
        schema["description"] = description
    return schema


def _first_line(cls: type) -> str | None:
    # A dataclass without a docstring of its own gets its signature as ``__doc__``.
    doc = cls.__doc__
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return doc.strip().splitlines()[0]


def message_schema(event_type: type[Event]) -> Schema:
    """The ``message`` object of an event: its fields, JSON-ready."""
    return object_schema(event_type)


def envelope_schema(event_type: type[Event]) -> Schema:
    """The whole wire body of an event, as every transport carries it."""
    return {
        "type": "object",
        "properties": {
            "schema": {"const": SCHEMA_VERSION},
            "routing_key": {"const": event_type.routing_key},
            "event_id": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "message": message_schema(event_type),
            "signature": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "HMAC-SHA256 of the body without this last field, when the "
                "deployment signs its events (EVENT_SIGNING_KEY)",
            },
        },
        "required": ["event_id", "message", "occurred_at", "routing_key", "schema"],
        "additionalProperties": False,
    }


# -- WebSocket frames ---------------------------------------------------------------------------

# Fields of an entity that the API and snapshot frames never show.
_HIDDEN_FIELDS: dict[type, frozenset[str]] = {Document: frozenset({"storage_key"})}


# Values the API and snapshot frames show beside an entity's fields, derived from them.
_DERIVED_FIELDS: dict[type, dict[str, Schema]] = {
    Document: {"eta_seconds": type_schema(float | None)},
}


def entity_schema(cls: type) -> Schema:
    """An entity as ``representation.py`` shows it in the API and in snapshot frames."""
    schema = object_schema(cls, exclude=_HIDDEN_FIELDS.get(cls, frozenset()))
    derived = _DERIVED_FIELDS.get(cls, {})
    schema["properties"].update(derived)
    schema["required"] = sorted([*schema["required"], *derived])
    return schema


@dataclass(frozen=True)
class Frame:
    """One kind of WebSocket frame: its ``type`` and the schema of the rest of it."""

    type: str
    summary: str
    properties: Callable[[], Schema]
    # Properties a frame of this type may leave out; every other one is required.
    optional: frozenset[str] = frozenset()

    def schema(self) -> Schema:
        properties = {"type": {"const": self.type}, **self.properties()}
        return {
            "type": "object",
            "properties": properties,
            "required": sorted(set(properties) - self.optional),
            "additionalProperties": False,
        }


_CURSOR: Schema = {
    "type": "string",
    "description": "The change cursor (`<epoch>:<position>`) after this frame; see docs/api.md.",
}
_NULLABLE_STRING: Schema = {"anyOf": [{"type": "string"}, {"type": "null"}]}


_TRACEPARENT: Schema = {
    "type": "string",
    "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
    "description": "The W3C `traceparent` of the work that caused the change (the same as "
    "`data.traceparent`); left out when that work was not part of a trace.",
}


def _event_data(event_type: type[Event]) -> Callable[[], Schema]:
    return lambda: {
        "traceparent": _TRACEPARENT,
        "data": message_schema(event_type),
        "cursor": _CURSOR,
    }


def _sync_properties() -> Schema:
    return {
        "scope": {
            "type": "string",
            "description": "`workspaces`, `workspace:<id>` or `documents:<id>,…`",
        },
        "mode": {"enum": ["resumed", "snapshot"]},
        "reason": _NULLABLE_STRING,
        "kind": {"enum": ["documents", "workspaces"]},
        "cursor": _CURSOR,
        "more": _NULLABLE_STRING,
        "part": {"type": "integer", "minimum": 0},
        "last": {"type": "boolean"},
        "entities": {
            "type": "array",
            "items": {"anyOf": [entity_schema(Document), entity_schema(Workspace)]},
        },
    }


SERVER_FRAMES: tuple[Frame, ...] = (
    Frame(
        "snapshot",
        "The user's documents and workspaces as stored, on connect and after a resync.",
        lambda: {
            "documents": {"type": "array", "items": entity_schema(Document)},
            "workspaces": {"type": "array", "items": entity_schema(Workspace)},
        },
    ),
    Frame(
        "sync",
        "The first answer for one subscribed scope, in parts of at most 256 KB: the entities "
        "changed after the client's cursor (`resumed`) or a first page (`snapshot`).",
        _sync_properties,
    ),
    Frame(
        "document_status",
        "A document's status changed (the document.status.updated event's message); "
        "`traceparent` beside it when the change is part of a trace.",
        _event_data(DocumentStatusUpdated),
        optional=frozenset({"cursor", "traceparent"}),
    ),
    Frame(
        "workspace_status",
        "A workspace's status changed (the workspace.status.updated event's message); "
        "`traceparent` beside it when the change is part of a trace.",
        _event_data(WorkspaceStatusUpdated),
        optional=frozenset({"cursor", "traceparent"}),
    ),
)
CLIENT_FRAMES: tuple[Frame, ...] = (
    Frame("resync", "Ask for a fresh snapshot (or fresh first pages of the scopes).", lambda: {}),
    Frame(
        "subscribe",
        "Change the scopes of a live socket; only new scopes are answered.",
        lambda: {
            "scopes": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 8},
            "cursor": _NULLABLE_STRING,
        },
        optional=frozenset({"cursor"}),
    ),
)
# The operator socket (``/admin/ws``, operator tokens only) pushes one kind of frame.
OPERATOR_FRAMES: tuple[Frame, ...] = (
    Frame(
        "operator_figures",
        "The console's live figures per stage: queue depth, age of the oldest waiting request, "
        "dead letters, throughput and failure rate; sent on connect and whenever they change "
        "(read every 2 s).",
        lambda: {
            "at": {"type": "string", "format": "date-time"},
            "stages": {"type": "array", "items": STAGE_FIGURES_SCHEMA},
        },
    ),
)


def frame_schemas() -> dict[str, Schema]:
    """The schema of every server-to-client frame, by its ``type``."""
    return {frame.type: frame.schema() for frame in (*SERVER_FRAMES, *OPERATOR_FRAMES)}


# -- the AsyncAPI document ----------------------------------------------------------------------


def _camel(dotted: str) -> str:
    head, *rest = dotted.replace("_", ".").split(".")
    return head + "".join(part.capitalize() for part in rest)


def _frame_name(frame: Frame) -> str:
    return f"{_camel(frame.type)}Frame"


def _operation(action: str, channel: str, message_names: Iterable[str]) -> Schema:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in message_names],
    }


def asyncapi_document() -> Schema:
    """The AsyncAPI 3.0 document of the broker's events and the ``/ws`` frames."""
    channels: Schema = {}
    operations: Schema = {}
    messages: Schema = {}
    schemas: Schema = {}
    for routing_key, event_type in EVENT_TYPES.items():
        name = event_type.__name__
        channel = _camel(routing_key)
        schemas[name] = envelope_schema(event_type)
        work = event_type.kind is DeliveryKind.WORK
        messages[name] = {
            "name": name,
            "title": routing_key,
            "summary": _first_line(event_type)
            or f"{routing_key} ({'work request' if work else 'status broadcast'})",
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channels[channel] = {
            "address": routing_key,
            "description": (
                "Work request: delivered to one of the competing workers of its queue."
                if work
                else "Status broadcast: delivered to every listening server instance."
            ),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = _operation("send", channel, [name])

    def socket_messages_of(frames: Iterable[Frame]) -> Schema:
        """Each frame's schema and message, registered once; the channel's references."""
        references: Schema = {}
        for frame in frames:
            name = _frame_name(frame)
            schemas[name] = frame.schema()
            messages[name] = {
                "name": name,
                "title": frame.type,
                "summary": frame.summary,
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{name}"},
            }
            references[name] = {"$ref": f"#/components/messages/{name}"}
        return references

    socket_messages = socket_messages_of((*SERVER_FRAMES, *CLIENT_FRAMES))
    channels["statusSocket"] = {
        "address": "/ws",
        "description": "The authenticated WebSocket (token in the `token` query parameter).",
        "messages": socket_messages,
    }
    operations["pushStatus"] = _operation("send", "statusSocket", map(_frame_name, SERVER_FRAMES))
    operations["receiveClientFrames"] = _operation(
        "receive", "statusSocket", map(_frame_name, CLIENT_FRAMES)
    )
    operator_messages = socket_messages_of(OPERATOR_FRAMES)
    channels["operatorSocket"] = {
        "address": "/admin/ws",
        "description": "The operator's WebSocket (an operator token in the `token` query "
        "parameter); other tokens are refused with 403.",
        "messages": operator_messages,
    }
    operations["pushOperatorFigures"] = _operation(
        "send", "operatorSocket", map(_frame_name, OPERATOR_FRAMES)
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "InsightHub Status events",
            "version": str(SCHEMA_VERSION),
            "description": "Events on the broker (every transport carries the same JSON body) "
            "and the frames of the status WebSocket.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def asyncapi_json() -> str:
    return json.dumps(asyncapi_document(), indent=2, sort_keys=False) + "\n"


def _describe(schema: Schema) -> str:
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "anyOf" in schema:
        return " or ".join(_describe(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(map(str, kind))
    if kind == "array":
        return f"array of {_describe(schema.get('items', {}))}"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return str(kind)


def _fields_table(schema: Schema) -> list[str]:
    lines = ["| field | type |", "|---|---|"]
    for name, field_schema in schema["properties"].items():
        lines.append(f"| `{name}` | {_describe(field_schema)} |")
    return lines


def events_markdown() -> str:
    """``docs/events.md``: the same document as tables, for reading."""
    document = asyncapi_document()
    schemas = document["components"]["schemas"]
    lines = [
        "# Events and WebSocket frames",
        "",
        "Generated by `python -m entrypoints.asyncapi` from the domain's event classes; the",
        "machine-readable form is [asyncapi.json](asyncapi.json) (AsyncAPI 3.0), also served",
        "by every server at `/asyncapi.json`. Do not edit by hand.",
        "",
        f"Every event travels as one JSON object (envelope `schema` {SCHEMA_VERSION}):",
        "`schema`, `routing_key`, `event_id`, `occurred_at` and `message`, the fields below;",
        "a deployment that signs its events appends `signature` (see api.md, Signed events).",
        "",
        "## Broker events",
        "",
    ]
    for routing_key, event_type in EVENT_TYPES.items():
        kind = "work request" if event_type.kind is DeliveryKind.WORK else "status broadcast"
        lines += [f"### `{routing_key}` ({kind})", ""]
        message = schemas[event_type.__name__]["properties"]["message"]
        if "description" in message:
            lines += [message["description"], ""]
        lines += [*_fields_table(message), ""]
    lines += ["## WebSocket frames (`/ws`)", ""]
    for direction, frames in (
        ("server → client", SERVER_FRAMES),
        ("client → server", CLIENT_FRAMES),
    ):
        for frame in frames:
            lines += [f"### `{frame.type}` ({direction})", "", frame.summary, ""]
            lines += [*_fields_table(frame.schema()), ""]
    lines += ["## Operator frames (`/admin/ws`)", ""]
    for frame in OPERATOR_FRAMES:
        lines += [f"### `{frame.type}` (server → operator)", "", frame.summary, ""]
        lines += [*_fields_table(frame.schema()), ""]
    lines += ["Each of `stages`:", "", *_fields_table(STAGE_FIGURES_SCHEMA), ""]
    return "\n".join(lines).rstrip() + "\n"


GENERATED: dict[str, Callable[[], str]] = {
    "asyncapi.json": asyncapi_json,
    "events.md": events_markdown,
}


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated files under ``docs/`` (or the directory given)."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else DOCS_DIR
    for name, render in GENERATED.items():
        (directory / name).write_text(render(), encoding="utf-8")
        print(f"wrote {directory / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
