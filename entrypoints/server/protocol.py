"""The live protocol shared by ``/ws`` and ``/events``: cursors, scopes and frames.

A cursor is an opaque string ``<epoch>:<position>``: the installation's epoch and the highest
change position the client has fully applied. A scope names what a client shows:
``workspaces``, ``workspace:<id>`` (that workspace's documents) or ``documents:<id>,<id>…``.
Client frames are decoded totally: a frame is a known one, well formed; or a JSON object whose
string ``type`` this server does not know (ignored, for newer clients); or an error naming
what is wrong, and the socket is closed with ``CLOSE_BAD_FRAME``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from domain.feed import (
    MAX_SCOPE_DOCUMENT_IDS,
    DocumentsScope,
    Entity,
    Scope,
    WorkspaceDocumentsScope,
    WorkspacesScope,
)
from domain.result import Err, Ok, Result

# 1003 "unsupported data": the frame is not one this server understands.
CLOSE_BAD_FRAME: Final = 1003
MAX_SCOPES = 8
MAX_CURSOR_CHARS = 100
MAX_POSITION = 2**63 - 1
MAX_FRAME_BYTES = 256 * 1024
FIRST_PAGE_SIZE = 100
RESUME_LIMIT = 5000

_EPOCH = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A point in the change sequence of one installation."""

    epoch: str
    position: int

    def encode(self) -> str:
        return f"{self.epoch}:{self.position}"


def parse_cursor(text: str) -> Cursor | None:
    """The cursor ``text`` names, or ``None`` when it is malformed."""
    if len(text) > MAX_CURSOR_CHARS:
        return None
    epoch, colon, digits = text.rpartition(":")
    if not colon or not _EPOCH.fullmatch(epoch) or not _DIGITS.fullmatch(digits):
        return None
    position = int(digits)
    return Cursor(epoch, position) if position <= MAX_POSITION else None


def _parse_id(text: str) -> int | None:
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_POSITION else None


@dataclass(frozen=True, slots=True)
class ScopeName:
    """A scope as a client names it, before it is bound to a user."""

    kind: Literal["workspaces", "workspace", "documents"]
    ids: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.kind == "workspaces":
            return "workspaces"
        return f"{self.kind}:{','.join(str(i) for i in self.ids)}"

    def bind(self, user_id: int) -> Scope:
        """The scope of ``user_id`` this name stands for."""
        if self.kind == "workspaces":
            return WorkspacesScope(user_id)
        if self.kind == "workspace":
            return WorkspaceDocumentsScope(user_id, self.ids[0])
        return DocumentsScope(user_id, frozenset(self.ids))

    @property
    def entity_kind(self) -> str:
        return "workspace" if self.kind == "workspaces" else "document"


def parse_scope(text: str) -> Result[ScopeName, str]:
    """The scope ``text`` names, or what is wrong with it."""
    if text == "workspaces":
        return Ok(ScopeName("workspaces"))
    kind, colon, rest = text.partition(":")
    if colon and kind == "workspace":
        workspace_id = _parse_id(rest)
        if workspace_id is not None:
            return Ok(ScopeName("workspace", (workspace_id,)))
    if colon and kind == "documents" and len(rest) <= 20 * MAX_SCOPE_DOCUMENT_IDS:
        ids = [_parse_id(part) for part in rest.split(",")]
        if ids and None not in ids and len(ids) <= MAX_SCOPE_DOCUMENT_IDS:
            return Ok(ScopeName("documents", tuple(sorted({i for i in ids if i is not None}))))
    return Err(
        f"unknown scope {text[:60]!r}: expected 'workspaces', 'workspace:<id>' or "
        f"'documents:<id>,…' (at most {MAX_SCOPE_DOCUMENT_IDS} ids)"
    )


def parse_scopes(texts: Sequence[str]) -> Result[tuple[ScopeName, ...], str]:
    """Several scope names, deduplicated, at most ``MAX_SCOPES``; at least one."""
    if not texts:
        return Err("name at least one scope")
    if len(texts) > MAX_SCOPES:
        return Err(f"at most {MAX_SCOPES} scopes may be subscribed at once")
    names: list[ScopeName] = []
    for text in texts:
        parsed = parse_scope(text)
        if isinstance(parsed, Err):
            return parsed
        if parsed.value not in names:
            names.append(parsed.value)
    return Ok(tuple(names))


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Client frame: show these scopes; the ones not yet shown are answered after ``cursor``."""

    scopes: tuple[ScopeName, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Resync:
    """Client frame: answer every subscribed scope afresh, from the first page."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """Client frame of a type this server does not know (a newer client's): it is ignored."""

    kind: str


ClientFrame: TypeAlias = Subscribe | Resync | Unknown


def decode_client_frame(text: str) -> Result[ClientFrame, str]:
    """A client's text frame, or why it is not one this server accepts."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return Err("frames must be JSON")
    if not isinstance(frame, dict):
        return Err("a frame must be a JSON object")
    kind = frame.get("type")
    if not isinstance(kind, str):
        return Err("a frame must have a string 'type'")
    if kind == "resync":
        return Ok(Resync()) if set(frame) == {"type"} else Err("'resync' takes no fields")
    if kind != "subscribe":
        return Ok(Unknown(kind))
    unknown = set(frame) - {"type", "scopes", "cursor"}
    if unknown:
        return Err(f"unknown field {sorted(unknown)[0][:40]!r} in 'subscribe'")
    scopes = frame.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        return Err("'scopes' must be a list of scope names")
    cursor = frame.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        return Err("'cursor' must be a string or null")
    names = parse_scopes(scopes)
    if isinstance(names, Err):
        return names
    return Ok(Subscribe(names.value, cursor))


Mode = Literal["snapshot", "resumed"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a scope's subscriber is sent first: a first page or the changes after its cursor."""

    scope: ScopeName
    mode: Mode
    reason: str | None
    entities: list[Entity]
    entity_json: list[dict[str, Any]]
    cursor: str
    # The HTTP page key after this first page, when the scope holds more.
    more: str | None


def answer_frames(answer: Answer, max_bytes: int = MAX_FRAME_BYTES) -> Iterator[str]:
    """``answer`` as one or more ``sync`` frames of at most ``max_bytes`` each.

    An entity larger than the bound on its own still goes, alone, in one frame.
    """
    head: dict[str, Any] = {
        "type": "sync",
        "scope": str(answer.scope),
        "mode": answer.mode,
        "reason": answer.reason,
        "kind": answer.scope.entity_kind,
        "cursor": answer.cursor,
        "more": answer.more,
    }
    encoded = [_compact(item) for item in answer.entity_json]
    # Room for the envelope: its fields, the part number and the "last" flag.
    envelope = len(_compact({**head, "part": 10**6, "last": False, "entities": []}))
    part = 0
    start = 0
    while True:
        size = envelope
        end = start
        while end < len(encoded) and (end == start or size + len(encoded[end]) + 1 <= max_bytes):
            size += len(encoded[end]) + 1
            end += 1
        last = end >= len(encoded)
        yield (
            _compact({**head, "part": part, "last": last})[:-1]
            + ',"entities":['
            + ",".join(encoded[start:end])
            + "]}"
        )
        if last:
            return
        part += 1
        start = end


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))
