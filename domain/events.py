"""Events, the wire format every transport shares, and the work-queue topology.

On the wire an event is one JSON object::

    {"schema": 1, "routing_key": "document.status.updated", "event_id": "…",
     "occurred_at": "2026-01-01T00:00:00+00:00", "message": {…}}

``message`` holds the event's fields, JSON-ready, and repeats ``event_id`` and
``occurred_at`` so that a consumer can forward it as it is.
"""

from __future__ import annotations

import json
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, Self, TypeAlias

from domain.entities import NO_POSITION, Document, Workspace
from domain.errors import MalformedMessage
from domain.jsontext import JsonRefused, is_utf8, parse_json
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from domain.timing import announced_eta

SCHEMA_VERSION = 1
MAX_BODY_BYTES = 1024 * 1024


class DeliveryKind(str, Enum):
    """How an event travels: to one of competing workers, or to every listening server."""

    WORK = "work"
    STATUS = "status"


_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def is_traceparent(value: object) -> bool:
    """Whether ``value`` is a W3C ``traceparent`` header value (version, trace, span, flags)."""
    return isinstance(value, str) and _TRACEPARENT.fullmatch(value) is not None


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened, identified by ``event_id`` and routed by ``routing_key``."""

    routing_key: ClassVar[str]
    kind: ClassVar[DeliveryKind]

    event_id: str = field(default_factory=new_event_id)
    occurred_at: datetime = field(default_factory=utc_now)
    # The W3C ``traceparent`` of the work that caused the event; added after the first
    # schema, so older events decode without it, and one that is not well formed is dropped.
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready fields of this event."""
        return {
            name: getattr(self, name) if to_json is None else to_json(getattr(self, name))
            for name, to_json in _field_encoders(type(self))
        }

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for name, hint, required in _field_hints(cls):
            if name not in message:
                if not required:
                    continue  # a field added later, absent from older senders' events
                raise MalformedMessage(f"{cls.routing_key}: missing field '{name}'")
            values[name] = _from_json(hint, message[name], name)
        if not is_traceparent(values.get("traceparent")):
            values.pop("traceparent", None)
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentStatusUpdated(Event):
    routing_key: ClassVar[str] = "document.status.updated"
    kind: ClassVar[DeliveryKind] = DeliveryKind.STATUS

    document_id: int
    user_id: int
    workspace_id: int
    filename: str
    status: DocumentProcessingStatus
    error: str | None
    chunk_count: int
    metadata: dict[str, Any]
    progress: Progress
    version: int
    # Added after the first schema: events sent before it decode with NO_POSITION.
    position: int = NO_POSITION
    # Added later: the estimated seconds left while processing, null when there is no estimate.
    eta_seconds: float | None = None

    @classmethod
    def of(cls, document: Document, *, traceparent: str | None = None) -> DocumentStatusUpdated:
        return cls(
            traceparent=traceparent,
            document_id=document.id,
            user_id=document.user_id,
            workspace_id=document.workspace_id,
            filename=document.filename,
            status=document.processing_status,
            error=document.processing_error,
            chunk_count=document.chunk_count,
            metadata=dict(document.metadata),
            progress=document.progress,
            version=document.version,
            position=document.position,
            eta_seconds=announced_eta(document),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceStatusUpdated(Event):
    routing_key: ClassVar[str] = "workspace.status.updated"
    kind: ClassVar[DeliveryKind] = DeliveryKind.STATUS

    workspace_id: int
    user_id: int
    name: str
    status: WorkspaceStatus
    message: str | None
    version: int
    position: int = NO_POSITION

    @classmethod
    def of(cls, workspace: Workspace, *, traceparent: str | None = None) -> WorkspaceStatusUpdated:
        return cls(
            traceparent=traceparent,
            workspace_id=workspace.id,
            user_id=workspace.user_id,
            name=workspace.name,
            status=workspace.status,
            message=workspace.status_message,
            version=workspace.version,
            position=workspace.position,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentUploaded(Event):
    """Work request: process this document (sent on upload and on retry)."""

    routing_key: ClassVar[str] = "document.uploaded"
    kind: ClassVar[DeliveryKind] = DeliveryKind.WORK

    document_id: int
    user_id: int
    workspace_id: int
    file_path: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceCreated(Event):
    """Work request: provision this workspace (sent on creation and on retry)."""

    routing_key: ClassVar[str] = "workspace.created"
    kind: ClassVar[DeliveryKind] = DeliveryKind.WORK

    workspace_id: int
    user_id: int
    name: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _HandOff(Event):
    """Work request from one pipeline stage to the next: the document is ready for it."""

    kind: ClassVar[DeliveryKind] = DeliveryKind.WORK

    document_id: int
    user_id: int
    workspace_id: int
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentChunked(_HandOff):
    """Work request: the document's text is chunked; embed and index it."""

    routing_key: ClassVar[str] = "document.chunked"


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentEmbedded(_HandOff):
    """Work request: the document's chunks are indexed; build its graph."""

    routing_key: ClassVar[str] = "document.embedded"


StatusEvent: TypeAlias = DocumentStatusUpdated | WorkspaceStatusUpdated
DocumentWork: TypeAlias = DocumentUploaded | DocumentChunked | DocumentEmbedded

EVENT_TYPES: dict[str, type[Event]] = {
    cls.routing_key: cls
    for cls in (
        DocumentStatusUpdated,
        WorkspaceStatusUpdated,
        DocumentUploaded,
        WorkspaceCreated,
        DocumentChunked,
        DocumentEmbedded,
    )
}

STATUS_ROUTING_KEYS: tuple[str, ...] = tuple(
    key for key, cls in EVENT_TYPES.items() if cls.kind is DeliveryKind.STATUS
)


def is_status_routing_key(routing_key: str) -> bool:
    """Whether ``routing_key`` is a status broadcast's (``<entity>.status.updated``)."""
    entity, _, rest = routing_key.partition(".")
    return bool(entity) and rest == "status.updated"


# Each named work queue and the work requests bound to it; competing workers share a queue.
WORK_QUEUES: dict[str, tuple[str, ...]] = {
    "provisioning": (WorkspaceCreated.routing_key,),
    "ingestion": (DocumentUploaded.routing_key,),
    "embeddings": (DocumentChunked.routing_key,),
    "graph": (DocumentEmbedded.routing_key,),
}


def status_event_for(
    entity: Document | Workspace, *, traceparent: str | None = None
) -> StatusEvent:
    """The status event announcing ``entity`` as it now stands, in trace ``traceparent``."""
    if isinstance(entity, Document):
        return DocumentStatusUpdated.of(entity, traceparent=traceparent)
    return WorkspaceStatusUpdated.of(entity, traceparent=traceparent)


def entity_key(event: StatusEvent) -> tuple[str, int]:
    """Which entity a status event is about, for per-entity version ordering."""
    if isinstance(event, DocumentStatusUpdated):
        return ("document", event.document_id)
    return ("workspace", event.workspace_id)


def encode(event: Event) -> bytes:
    envelope = {
        "schema": SCHEMA_VERSION,
        "routing_key": event.routing_key,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "message": event.to_message(),
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def decode(body: bytes | str) -> Event:
    """Parse a wire body; anything but a well-formed known event raises ``MalformedMessage``.

    Total: whatever the bytes, the answer is an event or ``MalformedMessage`` with a reason,
    never another exception, so that every consumer can dead-letter what it cannot use.
    """
    try:
        return _decode(body)
    except MalformedMessage:
        raise
    except RecursionError:
        raise MalformedMessage(f"body nests deeper than {MAX_NESTING}") from None
    except Exception as exc:  # outside bytes must never reach a consumer as a crash
        raise MalformedMessage(f"body is not a valid event: {type(exc).__name__}") from None


# Bounds on what a plausible event holds: the body's own size, how deep its JSON nests, how
# many digits an integer has, and what a stored id, version or count can be.
MAX_NESTING = 32
MAX_ID = 2**63 - 1
MAX_COUNT = 2**31 - 1
_COUNT_FIELDS = frozenset({"version", "chunk_count"})


def _check_tree(value: object) -> None:
    # Iterative, so that a hostile depth costs no stack; strings must survive re-encoding.
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_NESTING:
            raise MalformedMessage(f"body nests deeper than {MAX_NESTING}")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if not is_utf8(text):
        raise MalformedMessage("body holds a lone surrogate, which is not text")


def _decode(body: bytes | str) -> Event:
    if len(body) > MAX_BODY_BYTES:
        raise MalformedMessage(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        envelope = parse_json(body)
    except JsonRefused as exc:
        if "nests" in str(exc):
            raise MalformedMessage(f"body nests deeper than {MAX_NESTING}") from None
        raise MalformedMessage(f"body is not JSON: {exc}") from None
    _check_tree(envelope)
    if not isinstance(envelope, dict):
        raise MalformedMessage("body is not a JSON object")
    if envelope.get("schema") != SCHEMA_VERSION:
        raise MalformedMessage(f"unsupported schema {envelope.get('schema')!r}")
    routing_key = envelope.get("routing_key")
    event_type = EVENT_TYPES.get(routing_key) if isinstance(routing_key, str) else None
    if event_type is None:
        raise MalformedMessage(f"unknown routing key {routing_key!r}")
    for key in ("event_id", "occurred_at"):
        if not isinstance(envelope.get(key), str):
            raise MalformedMessage(f"envelope field '{key}' is missing or not a string")
    message = envelope.get("message")
    if not isinstance(message, dict):
        raise MalformedMessage("'message' is not a JSON object")
    message = {
        **message,
        "event_id": envelope.get("event_id"),
        "occurred_at": envelope.get("occurred_at"),
    }
    return event_type.from_message(message)


_FIELD_HINTS: dict[type[Event], tuple[tuple[str, object, bool], ...]] = {}


def _field_hints(cls: type[Event]) -> tuple[tuple[str, object, bool], ...]:
    """Each field's name, type and whether a message must carry it (all but plain defaults)."""
    # Resolving string annotations is costly, and every consumer decodes every message.
    known = _FIELD_HINTS.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls)
        known = _FIELD_HINTS[cls] = tuple(
            (f.name, hints[f.name], f.default is MISSING) for f in fields(cls)
        )
    return known


_Encoder: TypeAlias = "Callable[[Any], object] | None"
_FIELD_ENCODERS: dict[type[Event], tuple[tuple[str, _Encoder], ...]] = {}


def _field_encoders(cls: type[Event]) -> tuple[tuple[str, _Encoder], ...]:
    """Each field's name and how its value becomes JSON (``None``: as it is); once per class.

    Every status change encodes its event: deciding each field's conversion from its declared
    type once, rather than by testing each value, is most of what encoding costs.
    """
    known = _FIELD_ENCODERS.get(cls)
    if known is None:
        known = _FIELD_ENCODERS[cls] = tuple(
            (name, _encoder_for(hint)) for name, hint, _required in _field_hints(cls)
        )
    return known


def _encoder_for(hint: object) -> _Encoder:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        inner = _encoder_for(options[0]) if len(options) == 1 else _to_json
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if hint is datetime:
        return datetime.isoformat
    if hint is Progress:
        return Progress.to_json
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_value
    if hint in (str, int, float, bool) or typing.get_origin(hint) in (dict, list):
        return None
    return _to_json  # a type this table does not know: decided by the value, as before


def _enum_value(value: Enum) -> object:
    return value.value


def _to_json(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Progress):
        return value.to_json()
    return value


def _from_json(hint: object, raw: object, name: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if raw is None and type(None) in options:
            return None
        (hint,) = (option for option in options if option is not type(None))
        origin = typing.get_origin(hint)
    try:
        if hint is datetime:
            if not isinstance(raw, str):
                raise TypeError("expected an ISO timestamp")
            return datetime.fromisoformat(raw)
        if hint is Progress:
            return Progress.from_json(raw)
        if isinstance(hint, type) and issubclass(hint, Enum):
            return hint(raw)
        expected = origin or hint
        if expected is int:
            _check_int(raw, name)
        if expected is float:
            return _checked_float(raw)
        if isinstance(expected, type) and expected is not int and not isinstance(raw, expected):
            raise TypeError(f"expected {expected.__name__}")
    except (TypeError, ValueError) as exc:
        raise MalformedMessage(f"field '{name}': {exc} (got {raw!r})") from None
    return raw


def _checked_float(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError("expected a number")
    if not 0 <= raw < MAX_ID:  # also refuses NaN, which compares false with everything
        raise ValueError("expected a finite number that is not negative")
    return float(raw)


def _check_int(raw: object, name: str) -> None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError("expected an integer")
    limit = MAX_COUNT if name in _COUNT_FIELDS else MAX_ID
    if not 0 <= raw <= limit:
        raise ValueError(f"expected an integer from 0 to {limit}")
