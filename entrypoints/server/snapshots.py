"""First answers to sockets: a scope's changes after a cursor, a first page, or a whole snapshot.

A reconnect storm (a server restart, a network blip) brings many sockets back together, often
several per user (tabs, devices). Each needs a snapshot read *after* it was registered with the
hub, so that a change committed meanwhile is either in its snapshot or in its queue. A read that
has not begun yet satisfies that for every socket registered so far, so such requests share it:
per user there is at most one read running and one waiting to begin, which every request that
arrives meanwhile joins.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from domain.entities import Document, Workspace
from domain.feed import Changes, Entity, Page, Scope
from domain.ports import ChangeFeed
from entrypoints.server.protocol import (
    FIRST_PAGE_SIZE,
    RESUME_LIMIT,
    Answer,
    Cursor,
    Mode,
    ScopeName,
    parse_cursor,
)
from entrypoints.server.representation import document_json, workspace_json

EntityKey = tuple[str, int]


class Snapshot:
    """A user's documents and workspaces as the database holds them, encoded once."""

    __slots__ = ("documents", "frame", "versions", "workspaces")

    def __init__(self, documents: list[Document], workspaces: list[Workspace]) -> None:
        self.documents = documents
        self.workspaces = workspaces
        # Shared by every socket the snapshot is sent to: encoded once, not per socket.
        self.frame = json.dumps(
            {
                "type": "snapshot",
                "documents": [document_json(d) for d in documents],
                "workspaces": [workspace_json(w) for w in workspaces],
            },
            separators=(",", ":"),
        )
        versions: dict[EntityKey, int] = {("document", d.id): d.version for d in documents}
        versions.update({("workspace", w.id): w.version for w in workspaces})
        self.versions = versions


SnapshotLoader = Callable[[int], Awaitable[Snapshot]]
SnapshotRead = Callable[[int], Snapshot]
K = TypeVar("K", bound=Hashable)
# How long a finished read may answer later requests of a key nothing has happened to.
REUSE_SECONDS = 10.0
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    """Blocking reads by key, where concurrent requests for one key share a read not yet begun.

    Per key there is at most one read running and one waiting to begin, which every request
    arriving meanwhile joins: a thousand sockets asking the same thing cost one query.

    A read that has begun may miss a change its late requester must see, unless nothing has
    happened to the key since it began: ``stamp``, when given, tells (a counter of the events
    dispatched for the key's user), and a request arriving while it is unchanged joins the
    running read too — or, for ``reuse_seconds`` after it ended, takes the finished read's
    answer, so that sockets trickling in over the seconds a storm lasts still share one read.
    Anything committed after the read began reaches such a socket as a live event, since it
    is registered before it asks. ``forget`` drops finished answers (after missed events).
    """

    def __init__(
        self,
        read: Callable[[K], V],
        run_blocking: Callable[[Callable[[K], V], K], Awaitable[V]] = run_in_threadpool,
        stamp: Callable[[K], int] | None = None,
        reuse_seconds: float = REUSE_SECONDS,
    ) -> None:
        self._read = read
        self._run_blocking = run_blocking
        self.stamp = stamp
        self._reuse_seconds = reuse_seconds
        self._finished: dict[K, tuple[float, int, V]] = {}
        self._swept = 0.0
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._reading: dict[K, asyncio.Future[V]] = {}
        self._stamps: dict[K, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0

    def forget(self) -> None:
        """Answer every later request with a fresh read."""
        self._finished.clear()

    async def __call__(self, key: K) -> V:
        finished = self._finished.get(key)
        if finished is not None and self.stamp is not None:
            at, stamp, value = finished
            if time.monotonic() - at <= self._reuse_seconds and stamp == self.stamp(key):
                return value
            del self._finished[key]
        running = self._reading.get(key)
        if (
            running is not None
            and self.stamp is not None
            and self._stamps.get(key) == self.stamp(key)
        ):
            return await asyncio.shield(running)
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            waiting.add_done_callback(_retrieve)
            self._waiting[key] = waiting
            task = asyncio.create_task(self._read_when_free(key, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: one socket going away must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    def _drop_stale(self, now: float) -> None:
        # Swept at most once per reuse period, so that a busy server does not scan per read.
        if now - self._swept < self._reuse_seconds:
            return
        self._swept = now
        stale = [k for k, (at, _, _) in self._finished.items() if now - at > self._reuse_seconds]
        for key in stale:
            del self._finished[key]

    async def _read_when_free(self, key: K, result: asyncio.Future[V]) -> None:
        try:
            running = self._reading.get(key)
            if running is not None:
                await asyncio.wait((running,))
            # From here on the read has begun as far as new requests are concerned: they
            # queue behind it rather than join it, since it may miss what they must see.
            del self._waiting[key]
            self._reading[key] = result
            if self.stamp is not None:
                self._stamps[key] = self.stamp(key)
            self.reads += 1
            value = await self._run_blocking(self._read, key)
            result.set_result(value)
            stamp = self._stamps.get(key)
            if stamp is not None:
                finished = time.monotonic()
                self._finished[key] = (finished, stamp, value)
                self._drop_stale(finished)
        except asyncio.CancelledError:
            result.cancel()
            raise
        except Exception as exc:  # every waiter gets the failure, whatever it is
            result.set_exception(exc)
        finally:
            if self._waiting.get(key) is result:
                del self._waiting[key]
            if self._reading.get(key) is result:
                del self._reading[key]
                self._stamps.pop(key, None)


# A user's whole state, for clients that subscribe to no scope (protocol 1).
SharedSnapshotReads = SharedReads


def _entity_json(entity: Entity) -> dict[str, Any]:
    return document_json(entity) if isinstance(entity, Document) else workspace_json(entity)


class ScopeReader:
    """Answers a subscription to a scope: the changes after a cursor, or a first page.

    Reads are shared per (scope, cursor position) and per scope, so a reconnect storm costs
    one query per distinct scope and cursor, not one per socket. A cursor that cannot be
    honoured exactly — malformed, of another epoch, beyond anything this store has issued,
    or so far behind that the changes would outnumber ``resume_limit`` — gets a first page
    (``snapshot``), saying why; never a silent gap. ``feed`` is called for the feed at each
    read, so that building it (and connecting) waits until the first one.
    """

    def __init__(
        self,
        feed: Callable[[], ChangeFeed],
        *,
        first_page: int = FIRST_PAGE_SIZE,
        resume_limit: int = RESUME_LIMIT,
        run_blocking: Callable[[Callable[[Any], Any], Any], Awaitable[Any]] = run_in_threadpool,
    ) -> None:
        self._feed = feed
        self._epoch: str | None = None
        self._run_blocking = run_blocking
        self.changes: SharedReads[tuple[Scope, int], Changes] = SharedReads(
            lambda key: feed().changes(key[0], after=key[1], limit=resume_limit), run_blocking
        )
        self.pages: SharedReads[Scope, Page] = SharedReads(
            lambda scope: feed().page(scope, limit=first_page), run_blocking
        )

    def forget(self) -> None:
        """Answer every later request with a fresh read (events may have been missed)."""
        self.changes.forget()
        self.pages.forget()

    def stamp_with(self, events_of_user: Callable[[int], int]) -> None:
        """Let requests join a running read while ``events_of_user`` is unchanged for its user."""
        self.changes.stamp = lambda key: events_of_user(key[0].user_id)
        self.pages.stamp = lambda scope: events_of_user(scope.user_id)

    @property
    def reads(self) -> int:
        """Reads of the feed issued so far (shared reads count once)."""
        return self.changes.reads + self.pages.reads

    async def epoch(self) -> str:
        if self._epoch is None:
            self._epoch = await self._run_blocking(lambda _: self._feed().epoch(), None)
        return self._epoch

    async def answer(self, user_id: int, name: ScopeName, cursor_text: str | None) -> Answer:
        """The first answer to a subscriber of ``name`` holding ``cursor_text``."""
        epoch = await self.epoch()
        scope = name.bind(user_id)
        if cursor_text is None:
            return await self._snapshot(name, scope, epoch, None)
        cursor = parse_cursor(cursor_text)
        if cursor is None:
            return await self._snapshot(name, scope, epoch, "malformed cursor")
        if cursor.epoch != epoch:
            return await self._snapshot(name, scope, epoch, "cursor of another epoch")
        changes = await self.changes((scope, cursor.position))
        if cursor.position > (changes.head or 0):
            return await self._snapshot(name, scope, epoch, "unknown cursor")
        if not changes.complete:
            return await self._snapshot(name, scope, epoch, "cursor too far behind")
        # Every change of the scope up to the user's head at the read is in the answer.
        after = Cursor(epoch, max(cursor.position, changes.cursor, changes.head or 0))
        return _answer(name, "resumed", None, changes.entities, after, None)

    async def _snapshot(
        self, name: ScopeName, scope: Scope, epoch: str, reason: str | None
    ) -> Answer:
        page = await self.pages(scope)
        more = None if page.next_key is None else str(page.next_key.after_id)
        return _answer(name, "snapshot", reason, page.entities, Cursor(epoch, page.head or 0), more)


def _answer(
    name: ScopeName,
    mode: Mode,
    reason: str | None,
    entities: list[Entity],
    cursor: Cursor,
    more: str | None,
) -> Answer:
    entity_json = [_entity_json(e) for e in entities]
    return Answer(name, mode, reason, entities, entity_json, cursor.encode(), more)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # The waiters may all have gone: the failure is theirs to report, not the loop's to log.
    if not future.cancelled():
        future.exception()
