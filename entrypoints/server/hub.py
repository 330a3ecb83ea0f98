"""The sockets of this server instance, and how status events reach them.

Every socket has a bounded send queue and its own sender task, so one slow client can never
hold up another; a socket whose queue overflows is closed (its client reconnects and gets a
fresh snapshot). Each socket remembers, per entity, the version it was last sent, and an
event that is not newer is dropped: what a client is shown never goes back in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from domain.entities import Document, Workspace
from domain.events import DocumentStatusUpdated, StatusEvent, entity_key
from entrypoints.server.metrics import ServerMetrics
from entrypoints.server.representation import document_json, workspace_json

log = logging.getLogger(__name__)

EntityKey = tuple[str, int]

# Close codes a client can act on: 1013 "try again later" for a client that fell behind.
CLOSE_SLOW_CLIENT = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011


class FrameSender(Protocol):
    """The one thing the hub needs from a WebSocket: sending a text frame."""

    async def send_text(self, data: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A user's documents and workspaces as the database holds them."""

    documents: list[Document]
    workspaces: list[Workspace]

    def frame(self) -> str:
        return json.dumps(
            {
                "type": "snapshot",
                "documents": [document_json(d) for d in self.documents],
                "workspaces": [workspace_json(w) for w in self.workspaces],
            },
            separators=(",", ":"),
        )

    def versions(self) -> dict[EntityKey, int]:
        versions = {("document", d.id): d.version for d in self.documents}
        versions.update({("workspace", w.id): w.version for w in self.workspaces})
        return versions


SnapshotLoader = Callable[[int], Awaitable[Snapshot]]


def event_frame(event: StatusEvent) -> str:
    kind = "document_status" if isinstance(event, DocumentStatusUpdated) else "workspace_status"
    message: dict[str, Any] = {"type": kind, "data": event.to_message()}
    return json.dumps(message, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Push:
    event: StatusEvent
    frame: str


class _Resync:
    """Queue marker: send a fresh snapshot before anything queued after it."""


_RESYNC = _Resync()


class Connection:
    """One socket of one user: its send queue, what it was last sent, and why it must close."""

    def __init__(self, socket: FrameSender, user_id: int, *, queue_size: int) -> None:
        self.socket = socket
        self.user_id = user_id
        self._queue: asyncio.Queue[_Push | _Resync] = asyncio.Queue(maxsize=queue_size)
        self._sent: dict[EntityKey, int] = {}
        self._resync_pending = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.must_close = asyncio.Event()

    def offer(self, item: _Push | _Resync) -> bool:
        """Queue ``item`` without waiting; ``False`` when the socket is (now) to be closed."""
        if self.close_code is not None:
            return False
        if isinstance(item, _Resync):
            if self._resync_pending:
                return True
            self._resync_pending = True
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close(CLOSE_SLOW_CLIENT, "client is not reading fast enough; reconnect")
            return False
        return True

    def request_resync(self) -> None:
        """The client asked for a fresh snapshot."""
        self.offer(_RESYNC)

    def close(self, code: int, reason: str) -> None:
        """Ask the socket's handler to close it with ``code``; the first reason wins."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self.must_close.set()

    async def pump(self, load_snapshot: SnapshotLoader, metrics: ServerMetrics) -> None:
        """Send the snapshot, then every queued event that is newer than what was sent."""
        await self._send_snapshot(load_snapshot, metrics)
        while True:
            item = await self._queue.get()
            if isinstance(item, _Resync):
                self._resync_pending = False
                await self._send_snapshot(load_snapshot, metrics)
                continue
            event = item.event
            key = entity_key(event)
            if event.version <= self._sent.get(key, 0):
                metrics.events_stale += 1
                continue
            self._sent[key] = event.version
            await self.socket.send_text(item.frame)
            metrics.events_delivered += 1
            metrics.push_lag.observe(time.time() - event.occurred_at.timestamp())

    async def _send_snapshot(self, load_snapshot: SnapshotLoader, metrics: ServerMetrics) -> None:
        # Read only now, after the socket is registered: an event committed meanwhile is
        # either in the snapshot or waiting in the queue, never in neither.
        snapshot = await load_snapshot(self.user_id)
        for key, version in snapshot.versions().items():
            if version > self._sent.get(key, 0):
                self._sent[key] = version
        await self.socket.send_text(snapshot.frame())
        metrics.snapshots_sent += 1


class SocketHub:
    """Routes each status event to the sockets of the user it belongs to, and only those."""

    def __init__(self, metrics: ServerMetrics, *, queue_size: int = 256) -> None:
        if queue_size < 1:
            raise ValueError("a socket's send queue must hold at least one frame")
        self.metrics = metrics
        self.queue_size = queue_size
        self._by_user: dict[int, set[Connection]] = {}

    @property
    def connection_count(self) -> int:
        return sum(len(connections) for connections in self._by_user.values())

    def connect(self, socket: FrameSender, user_id: int) -> Connection:
        """Register a socket: from now on it receives its user's events (queued)."""
        connection = Connection(socket, user_id, queue_size=self.queue_size)
        self._by_user.setdefault(user_id, set()).add(connection)
        self.metrics.connected_sockets = self.connection_count
        return connection

    def disconnect(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[connection.user_id]
        self.metrics.connected_sockets = self.connection_count

    def dispatch(self, event: StatusEvent) -> None:
        """Queue ``event`` for every socket of ``event.user_id``; runs on the event loop."""
        self.metrics.events_received += 1
        connections = self._by_user.get(event.user_id)
        if not connections:
            self.metrics.events_unrouted += 1
            return
        push = _Push(event, event_frame(event))
        for connection in list(connections):
            if not connection.offer(push):
                self._drop_slow(connection)

    def resync_all(self) -> None:
        """Every socket gets a fresh snapshot: events may have been missed."""
        self.metrics.resyncs += 1
        for connections in list(self._by_user.values()):
            for connection in list(connections):
                if not connection.offer(_RESYNC):
                    self._drop_slow(connection)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        for connections in list(self._by_user.values()):
            for connection in list(connections):
                connection.close(code, reason)

    def _drop_slow(self, connection: Connection) -> None:
        # It gets nothing more; its handler closes it and counts it.
        self.disconnect(connection)
