"""Protocol-2 helpers for tests: collect a scope's answer from a WebSocket or an event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.sync.client import ClientConnection, connect

Frame = dict[str, Any]


@dataclass
class SyncAnswer:
    """A scope's first answer, its parts put back together."""

    scope: str
    mode: str
    reason: str | None
    cursor: str
    more: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    frames: int = 0
    largest_frame: int = 0

    @property
    def ids(self) -> list[int]:
        return [entity["id"] for entity in self.entities]


def subscription_query(token: str, scopes: Sequence[str], cursor: str | None = None) -> str:
    pairs = [("token", token), *(("scope", scope) for scope in scopes)]
    if cursor is not None:
        pairs.append(("cursor", cursor))
    return urlencode(pairs)


def open_scoped(
    port: int, token: str, scopes: Sequence[str], cursor: str | None = None
) -> ClientConnection:
    url = f"ws://127.0.0.1:{port}/ws?{subscription_query(token, scopes, cursor)}"
    connection: ClientConnection = connect(url, open_timeout=10, max_size=None)
    return connection


def collect_answer(frames: Iterator[str], scope: str | None = None) -> SyncAnswer:
    """Read ``sync`` frames (of ``scope``, if named) until one is the last of its answer."""
    answer: SyncAnswer | None = None
    for raw in frames:
        frame: Frame = json.loads(raw)
        if frame.get("type") != "sync" or (scope is not None and frame["scope"] != scope):
            continue
        if answer is None or frame["part"] == 0:
            answer = SyncAnswer(
                frame["scope"], frame["mode"], frame["reason"], frame["cursor"], frame["more"]
            )
        answer.entities.extend(frame["entities"])
        answer.frames += 1
        answer.largest_frame = max(answer.largest_frame, len(raw.encode()))
        if frame["last"]:
            return answer
    raise AssertionError("the stream ended before the answer was complete")


def socket_frames(connection: ClientConnection, timeout: float = 15.0) -> Iterator[str]:
    deadline = time.monotonic() + timeout
    while True:
        raw = connection.recv(timeout=max(0.1, deadline - time.monotonic()))
        yield raw if isinstance(raw, str) else raw.decode()


@dataclass
class EventStreamReader:
    """The data of an SSE response, event by event, remembering the last ``id``."""

    response: httpx.Response
    last_event_id: str | None = None

    def frames(self) -> Iterator[str]:
        data: list[str] = []
        for line in self.response.iter_lines():
            if line.startswith("id: "):
                pending_id = line[4:]
                self.last_event_id = pending_id
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                yield "\n".join(data)
                data = []
