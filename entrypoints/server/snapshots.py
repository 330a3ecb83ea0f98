"""Snapshots: a user's current state, read once for every socket of that user asking at once.

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
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from domain.entities import Document, Workspace
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


class SharedSnapshotReads:
    """A ``SnapshotLoader`` whose concurrent requests for one user share a read not yet begun."""

    def __init__(
        self,
        read: SnapshotRead,
        run_blocking: Callable[[SnapshotRead, int], Awaitable[Snapshot]] = run_in_threadpool,
    ) -> None:
        self._read = read
        self._run_blocking = run_blocking
        self._waiting: dict[int, asyncio.Future[Snapshot]] = {}
        self._reading: dict[int, asyncio.Future[Snapshot]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0

    async def __call__(self, user_id: int) -> Snapshot:
        waiting = self._waiting.get(user_id)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            waiting.add_done_callback(_retrieve)
            self._waiting[user_id] = waiting
            task = asyncio.create_task(self._read_when_free(user_id, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: one socket going away must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    async def _read_when_free(self, user_id: int, result: asyncio.Future[Snapshot]) -> None:
        try:
            running = self._reading.get(user_id)
            if running is not None:
                await asyncio.wait((running,))
            # From here on the read has begun as far as new requests are concerned: they
            # queue behind it rather than join it, since it may miss what they must see.
            del self._waiting[user_id]
            self._reading[user_id] = result
            self.reads += 1
            result.set_result(await self._run_blocking(self._read, user_id))
        except asyncio.CancelledError:
            result.cancel()
            raise
        except Exception as exc:  # every waiter gets the failure, whatever it is
            result.set_exception(exc)
        finally:
            if self._waiting.get(user_id) is result:
                del self._waiting[user_id]
            if self._reading.get(user_id) is result:
                del self._reading[user_id]


def _retrieve(future: asyncio.Future[Snapshot]) -> None:
    # The waiters may all have gone: the failure is theirs to report, not the loop's to log.
    if not future.cancelled():
        future.exception()
