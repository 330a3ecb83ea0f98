"""The sockets of this server instance, and how status events reach them.

Each event is encoded once and handed to every socket of its user. A socket that is keeping
up gets the frame written at once, on the event loop, with no task of its own; a socket that
is behind — its snapshot not sent yet, a resync under way, or its transport full — gets it
through a bounded backlog drained by a sender task that exists only while there is a
backlog. So one slow client can never hold up another, and a socket whose backlog
overflows is closed (its client reconnects and gets a fresh snapshot). Each socket
remembers, per entity, the version it was last sent, and an event that is not newer is
dropped: what a client is shown never goes back in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, Protocol

from application.tracing import NoTracer, Tracer
from domain.entities import NO_POSITION
from domain.events import DocumentStatusUpdated, StatusEvent, entity_key
from entrypoints.server.metrics import ServerMetrics
from entrypoints.server.protocol import (
    MAX_FRAME_BYTES,
    Cursor,
    ScopeName,
    Subscribe,
    answer_frames,
    parse_cursor,
)
from entrypoints.server.snapshots import EntityKey, ScopeReader, SnapshotLoader

log = logging.getLogger(__name__)

# Close codes a client can act on: 1013 "try again later" for a client that fell behind.
CLOSE_SLOW_CLIENT = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011


class FrameSender(Protocol):
    """The one thing the hub needs from a WebSocket: sending a text frame."""

    async def send_text(self, data: str) -> None: ...


def event_position(event: StatusEvent) -> int | None:
    """The change position an event announces; ``None`` from a producer that assigned none."""
    return event.position if event.position != NO_POSITION else None


def event_frame(event: StatusEvent, epoch: str | None = None) -> str:
    kind = "document_status" if isinstance(event, DocumentStatusUpdated) else "workspace_status"
    message: dict[str, Any] = {"type": kind}
    if event.traceparent is not None:
        # Beside ``data`` too: a client or proxy can follow the trace without reading the event.
        message["traceparent"] = event.traceparent
    message["data"] = event.to_message()
    position = event_position(event)
    if epoch is not None and position is not None:
        message["cursor"] = Cursor(epoch, position).encode()
    return json.dumps(message, separators=(",", ":"))


class _Push:
    """One event as every socket receives it: encoded, keyed and timestamped once."""

    __slots__ = ("frame", "key", "occurred", "position", "version", "workspace_id")

    def __init__(self, event: StatusEvent, epoch: str | None = None) -> None:
        self.key: EntityKey = entity_key(event)
        self.version = event.version
        self.workspace_id = event.workspace_id
        self.position = event_position(event)
        self.frame = event_frame(event, epoch)
        self.occurred = event.occurred_at.timestamp()

    def within(self, scopes: dict[ScopeName, None]) -> bool:
        """Whether the event concerns an entity of one of ``scopes``."""
        kind, entity_id = self.key
        for name in scopes:
            if name.kind == "workspaces":
                if kind == "workspace":
                    return True
            elif kind == "document" and (
                self.workspace_id == name.ids[0]
                if name.kind == "workspace"
                else entity_id in name.ids
            ):
                return True
        return False


class _Resync:
    """Backlog marker: send a fresh snapshot before anything queued after it."""


_RESYNC: Final = _Resync()


class _Answer:
    """Backlog marker: answer these scopes (after ``cursor``) before anything queued after it."""

    __slots__ = ("cursor", "scopes")

    def __init__(self, scopes: tuple[ScopeName, ...], cursor: str | None) -> None:
        self.scopes = scopes
        self.cursor = cursor


# What ``Connection.offer`` did with an event.
_SENT: Final = 0
_HELD: Final = 1
_REFUSED: Final = 2
_SKIPPED: Final = 3


class _Unfinished:
    """The rest of a send that had to wait: awaiting it resumes the send where it stopped."""

    __slots__ = ("_sending", "_waiting_on")

    def __init__(self, sending: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._sending = sending
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, None]:
        # Hand what the send waits on to the task awaiting this, and resume the send when
        # the task is woken, as ``await`` would have done had the send begun in that task.
        sending, waiting_on = self._sending, self._waiting_on
        while True:
            try:
                yield waiting_on
            except GeneratorExit:
                sending.close()
                raise
            except BaseException as exc:  # cancellation: the send must see it and clean up
                try:
                    waiting_on = sending.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting_on = sending.send(None)
            except StopIteration:
                return


def send_without_waiting(socket: FrameSender, frame: str) -> _Unfinished | None:
    """Start sending ``frame``: ``None`` if it is already written, else what finishes it.

    A WebSocket send waits only while the connection's transport is full; otherwise it
    writes and returns without suspending, so it can run right here, on the caller's turn
    of the event loop, instead of in a task of its own. Errors are raised here as well.
    """
    sending = socket.send_text(frame)
    try:
        waiting_on = sending.send(None)
    except StopIteration:
        return None
    return _Unfinished(sending, waiting_on)


class Connection:
    """One socket of one user: what it was last sent, what waits to be sent, and why it ends."""

    __slots__ = (
        "_backlog",
        "_finished",
        "_handler",
        "_hub",
        "_resync_fresh",
        "_resync_pending",
        "_sender",
        "_sent",
        "close_code",
        "close_reason",
        "failure",
        "position",
        "scopes",
        "socket",
        "user_id",
    )

    def __init__(self, socket: FrameSender, user_id: int, hub: SocketHub) -> None:
        self.socket = socket
        self.user_id = user_id
        self._hub = hub
        self._sent: dict[EntityKey, int] = {}
        self._backlog: deque[_Push | _Resync | _Answer] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._resync_pending = False
        self._resync_fresh = False
        self._finished = False
        # The task that reads this socket's frames, woken from its read when the socket ends.
        self._handler: asyncio.Task[Any] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.failure: BaseException | None = None
        # ``None``: a protocol-1 socket, shown all its user's entities.
        self.scopes: dict[ScopeName, None] | None = None
        # The highest change position this socket was sent, as far as it is known.
        self.position: int | None = None

    @property
    def finished(self) -> bool:
        """The socket must end: it was asked to close, or a send failed."""
        return self._finished

    def interrupt_on_end(self, handler: asyncio.Task[Any]) -> None:
        """Cancel ``handler`` (waiting for the client's next frame) when the socket ends.

        One waiting task per socket, not a reader task beside the handler: at 10,000 idle
        sockets that second task, and the wait on both, is most of the memory a socket costs
        beyond what the server itself holds.
        """
        self._handler = None if self._finished else handler

    def start(self) -> None:
        """Send the snapshot; events that arrive meanwhile wait behind it."""
        self._start_sender(self._send_snapshot)

    def subscribe(self, subscription: Subscribe) -> bool:
        """Show ``subscription.scopes``: the new ones are answered, the kept ones go on.

        ``False`` if the socket is to close.
        """
        if self.finished:
            return False
        held = self.scopes or {}
        fresh = tuple(name for name in subscription.scopes if name not in held)
        self.scopes = dict.fromkeys(subscription.scopes)
        if not fresh:
            return True
        answer = _Answer(fresh, subscription.cursor)
        if self._sender is None:
            self._start_sender(lambda: self._send_answers(answer))
            return True
        return self._hold(answer) != _REFUSED

    def cursor(self) -> str | None:
        """The cursor this socket's client holds, as far as the server knows."""
        epoch = self._hub.epoch
        if epoch is None or self.position is None:
            return None
        return Cursor(epoch, self.position).encode()

    def offer(self, push: _Push) -> int:
        """Send ``push`` now if the socket is keeping up, else queue it; never waits."""
        if self.finished:
            return _REFUSED
        scopes = self.scopes
        if scopes is not None and not push.within(scopes):
            return _SKIPPED
        if self._sender is not None:
            return self._hold(push)
        if push.version <= self._sent.get(push.key, 0):
            self._hub.metrics.events_stale += 1
            return _HELD
        self._sent[push.key] = push.version
        self._advance(push.position)
        try:
            unfinished = send_without_waiting(self.socket, push.frame)
        except Exception as exc:  # this socket is broken; the others carry on
            self._fail(exc)
            return _REFUSED
        if unfinished is None:
            return _SENT
        self._start_sender(lambda: self._finish(unfinished, push))
        return _HELD

    def request_resync(self, *, fresh: bool = True) -> bool:
        """Send a fresh snapshot before anything after it; ``False`` if the socket is to close.

        A scoped socket is sent each scope's first page, or with ``fresh=False`` the changes
        after the cursor it was last sent (enough when only live events may have been missed).
        """
        if self.finished:
            return False
        self._resync_fresh = self._resync_fresh or fresh
        if self._resync_pending:
            return True
        self._resync_pending = True
        if self._sender is None:
            self._start_sender(self._resync)
            return True
        return self._hold(_RESYNC) != _REFUSED

    def close(self, code: int, reason: str) -> None:
        """Ask the socket's handler to close it with ``code``; the first reason wins."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._end()

    async def stop(self) -> None:
        """Send nothing more: stop the sender task, if any, and wait for it to end."""
        self._end()
        sender = self._sender
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _advance(self, position: int | None) -> None:
        if position is not None and (self.position is None or position > self.position):
            self.position = position

    def _hold(self, item: _Push | _Resync | _Answer) -> int:
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        if len(backlog) >= self._hub.queue_size:
            self.close(CLOSE_SLOW_CLIENT, "client is not reading fast enough; reconnect")
            return _REFUSED
        backlog.append(item)
        return _HELD

    def _end(self) -> None:
        if self._finished:
            return
        self._finished = True
        handler, self._handler = self._handler, None
        if handler is not None and handler is not asyncio.current_task():
            handler.cancel()

    def _fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        self._end()

    def _start_sender(self, first: Callable[[], Awaitable[None]]) -> None:
        self._sender = asyncio.get_running_loop().create_task(self._send_backlog(first))

    async def _send_backlog(self, first: Callable[[], Awaitable[None]]) -> None:
        metrics = self._hub.metrics
        try:
            await first()
            backlog = self._backlog
            while backlog:
                item = backlog.popleft()
                if isinstance(item, _Resync):
                    await self._resync()
                    continue
                if isinstance(item, _Answer):
                    await self._send_answers(item)
                    continue
                if self.scopes is not None and not item.within(self.scopes):
                    continue  # queued before the socket changed scope
                if item.version <= self._sent.get(item.key, 0):
                    metrics.events_stale += 1
                    continue
                self._sent[item.key] = item.version
                self._advance(item.position)
                await self.socket.send_text(item.frame)
                metrics.events_delivered += 1
                metrics.push_lag.observe(time.time() - item.occurred)
        except Exception as exc:  # a failed read or send ends this socket, nothing else
            self._fail(exc)
        finally:
            # Caught up: from now on events are written directly again.
            self._sender = None
            self._backlog = None

    async def _finish(self, unfinished: _Unfinished, push: _Push) -> None:
        await unfinished
        self._hub.metrics.events_delivered += 1
        self._hub.metrics.push_lag.observe(time.time() - push.occurred)

    async def _resync(self) -> None:
        self._resync_pending = False
        fresh, self._resync_fresh = self._resync_fresh, False
        if self.scopes is None:
            await self._send_snapshot()
            return
        # Events may have been missed: every scope is answered again, after what it was sent.
        await self._send_answers(_Answer(tuple(self.scopes), None if fresh else self.cursor()))

    async def _send_answers(self, request: _Answer) -> None:
        # Read only now, after the socket is registered (see ``_send_snapshot``).
        reader = self._hub.reader
        if reader is None:
            raise RuntimeError("this server answers no scoped subscriptions")
        sent = self._sent
        # The scopes are read at once, then answered in the order they were asked for.
        answers = await asyncio.gather(
            *(reader.answer(self.user_id, name, request.cursor) for name in request.scopes)
        )
        for name, answer in zip(request.scopes, answers, strict=True):
            if self.scopes is None or name not in self.scopes:
                continue  # unsubscribed meanwhile
            for entity in answer.entities:
                key = ("document" if name.entity_kind == "document" else "workspace", entity.id)
                if entity.version > sent.get(key, 0):
                    sent[key] = entity.version
            parsed = parse_cursor(answer.cursor)
            self._advance(None if parsed is None else parsed.position)
            for frame in answer_frames(answer, self._hub.max_frame_bytes):
                await self.socket.send_text(frame)
                self._hub.metrics.snapshots_sent += 1

    async def _send_snapshot(self) -> None:
        # Read only now, after the socket is registered: an event committed meanwhile is
        # either in the snapshot or waiting in the backlog, never in neither.
        snapshot = await self._hub.load_snapshot(self.user_id)
        sent = self._sent
        for key, version in snapshot.versions.items():
            if version > sent.get(key, 0):
                sent[key] = version
        await self.socket.send_text(snapshot.frame)
        self._hub.metrics.snapshots_sent += 1


class SocketHub:
    """Routes each status event to the sockets of the user it belongs to, and only those."""

    def __init__(
        self,
        metrics: ServerMetrics,
        load_snapshot: SnapshotLoader,
        *,
        queue_size: int = 256,
        reader: ScopeReader | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        tracer: Tracer | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("a socket's send queue must hold at least one frame")
        self.metrics = metrics
        self.load_snapshot = load_snapshot
        self.queue_size = queue_size
        self.reader = reader
        self.max_frame_bytes = max_frame_bytes
        self.tracer = tracer or NoTracer()
        # Per user who ever connected here, how many events were dispatched: a read begun
        # before the last of them cannot serve a socket registered after it.
        self._dispatched: dict[int, int] = {}
        if reader is not None:
            reader.stamp_with(lambda user_id: self._dispatched.get(user_id, 0))
        # The installation's epoch, once known: live frames then carry cursors.
        self.epoch: str | None = None
        self._by_user: dict[int, set[Connection]] = {}
        self._count = 0

    @property
    def connection_count(self) -> int:
        return self._count

    def connections_of(self, user_id: int) -> int:
        return len(self._by_user.get(user_id, ()))

    def connect(
        self, socket: FrameSender, user_id: int, subscription: Subscribe | None = None
    ) -> Connection:
        """Register a socket and send its first answer; its events follow, never before.

        Without a subscription the socket speaks protocol 1: one snapshot of everything its
        user owns, then all their events.
        """
        connection = Connection(socket, user_id, self)
        self._by_user.setdefault(user_id, set()).add(connection)
        self._dispatched.setdefault(user_id, 0)
        self._count += 1
        self.metrics.connected_sockets = self._count
        # Started in the same turn of the loop as it was registered: no event can be written
        # to it directly before its first answer.
        if subscription is None:
            connection.start()
        else:
            connection.subscribe(subscription)
        return connection

    def disconnect(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id)
        if connections is not None and connection in connections:
            connections.discard(connection)
            self._count -= 1
            if not connections:
                del self._by_user[connection.user_id]
        self.metrics.connected_sockets = self._count

    def dispatch(self, event: StatusEvent) -> None:
        """Hand ``event`` to every socket of ``event.user_id``; runs on the event loop."""
        metrics = self.metrics
        metrics.events_received += 1
        dispatched = self._dispatched.get(event.user_id)
        if dispatched is not None:
            self._dispatched[event.user_id] = dispatched + 1
        connections = self._by_user.get(event.user_id)
        if not connections:
            metrics.events_unrouted += 1
            return
        # The frame carries the event's trace context; its sending is the trace's last span.
        sending = (
            contextlib.nullcontext()
            if event.traceparent is None
            else self.tracer.span(
                "send frame", parent=event.traceparent, attributes={"sockets": len(connections)}
            )
        )
        with sending:
            self._fan_out(event, connections)

    def _fan_out(self, event: StatusEvent, connections: set[Connection]) -> None:
        metrics = self.metrics
        push = _Push(event, self.epoch)
        sent = 0
        refused: list[Connection] = []
        for connection in connections:
            outcome = connection.offer(push)
            if outcome == _SENT:
                sent += 1
            elif outcome == _REFUSED:
                refused.append(connection)
        if sent:
            metrics.events_delivered += sent
            metrics.push_lag.observe_many(time.time() - push.occurred, sent)
        for connection in refused:
            self._drop(connection)

    def resync_all(self) -> None:
        """Every socket gets a fresh snapshot: events may have been missed."""
        self.metrics.resyncs += 1
        if self.reader is not None:
            self.reader.forget()
        refused = [
            connection
            for connections in self._by_user.values()
            for connection in connections
            if not connection.request_resync(fresh=False)
        ]
        for connection in refused:
            self._drop(connection)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        for connections in list(self._by_user.values()):
            for connection in list(connections):
                connection.close(code, reason)

    def _drop(self, connection: Connection) -> None:
        # It gets nothing more; its handler closes it and counts it.
        self.disconnect(connection)
