"""The socket hub with hand-written sockets: routing, ordering, version drop and backpressure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from domain.entities import Document, Workspace
from domain.events import DocumentStatusUpdated, WorkspaceStatusUpdated
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from entrypoints.server.hub import CLOSE_SLOW_CLIENT, SocketHub
from entrypoints.server.metrics import ServerMetrics
from entrypoints.server.snapshots import SharedSnapshotReads, Snapshot

T = TypeVar("T")


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(test())


class RecordingSocket:
    """A socket that takes every frame at once and keeps it."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send_text(self, data: str) -> None:
        self.frames.append(data)

    def decoded(self) -> list[dict[str, Any]]:
        return [json.loads(frame) for frame in self.frames]

    def kinds(self) -> list[str]:
        return [frame["type"] for frame in self.decoded()]


class StalledSocket(RecordingSocket):
    """A socket whose transport is full after ``room`` frames: later sends wait for ``drained``."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.drained = asyncio.Event()
        self.cancelled_sends = 0

    async def send_text(self, data: str) -> None:
        if len(self.frames) >= self.room:
            try:
                await self.drained.wait()
            except asyncio.CancelledError:
                self.cancelled_sends += 1
                raise
        self.frames.append(data)


class BrokenSocket:
    """A socket whose peer has gone: every send fails."""

    async def send_text(self, data: str) -> None:
        raise ConnectionResetError("peer went away")


def document_event(user_id: int, document_id: int, version: int) -> DocumentStatusUpdated:
    now = datetime.now(UTC)
    document = Document(
        id=document_id,
        user_id=user_id,
        workspace_id=1,
        filename="notes.txt",
        storage_key="documents/notes.txt",
        processing_status=DocumentProcessingStatus.PROCESSING,
        version=version,
        created_at=now,
        updated_at=now,
    )
    return DocumentStatusUpdated.of(document)


def workspace(
    user_id: int,
    workspace_id: int,
    version: int,
    status: WorkspaceStatus = WorkspaceStatus.READY,
    message: str | None = None,
) -> Workspace:
    now = datetime.now(UTC)
    return Workspace(
        id=workspace_id,
        user_id=user_id,
        name="Reports",
        status=status,
        status_message=message,
        version=version,
        created_at=now,
        updated_at=now,
    )


class Store:
    """What the database holds per user, read by a snapshot loader the test can hold back."""

    def __init__(self) -> None:
        self.workspaces: dict[int, list[Workspace]] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self.reads = 0

    def read(self, user_id: int) -> Snapshot:
        self.reads += 1
        return Snapshot(documents=[], workspaces=list(self.workspaces.get(user_id, [])))

    async def load(self, user_id: int) -> Snapshot:
        await self.gate.wait()
        return self.read(user_id)


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(20):
        await asyncio.sleep(0)


def this_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


def new_hub(store: Store, queue_size: int = 256) -> SocketHub:
    return SocketHub(ServerMetrics(), store.load, queue_size=queue_size)


def test_an_event_reaches_the_sockets_of_its_user_and_no_other() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        alice = [RecordingSocket(), RecordingSocket()]
        bob = RecordingSocket()
        for socket in alice:
            hub.connect(socket, 1)
        hub.connect(bob, 2)
        await settle()
        hub.dispatch(document_event(1, 10, 1))
        hub.dispatch(document_event(3, 30, 1))
        for socket in alice:
            assert socket.kinds() == ["snapshot", "document_status"]
            assert socket.decoded()[1]["data"]["user_id"] == 1
        assert bob.kinds() == ["snapshot"]
        assert hub.metrics.events_received == 2
        assert hub.metrics.events_unrouted == 1
        assert hub.metrics.events_delivered == 2
        assert hub.metrics.push_lag.observations == 2

    run(scenario)


def test_every_socket_of_a_user_gets_the_same_encoded_frame() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        sockets = [RecordingSocket() for _ in range(5)]
        for socket in sockets:
            hub.connect(socket, 1)
        await settle()
        hub.dispatch(document_event(1, 10, 1))
        first = sockets[0].frames[1]
        # One object for all: the event was encoded once, not once per socket.
        assert all(socket.frames[1] is first for socket in sockets)
        assert json.loads(first)["data"]["document_id"] == 10

    run(scenario)


def test_events_that_arrive_before_the_snapshot_is_sent_follow_it() -> None:
    async def scenario() -> None:
        store = Store()
        store.gate.clear()
        hub = new_hub(store)
        socket = RecordingSocket()
        hub.connect(socket, 1)
        await settle()
        hub.dispatch(document_event(1, 10, 1))
        hub.dispatch(document_event(1, 10, 2))
        assert socket.frames == []
        store.gate.set()
        await settle()
        assert socket.kinds() == ["snapshot", "document_status", "document_status"]
        assert [f["data"]["version"] for f in socket.decoded()[1:]] == [1, 2]

    run(scenario)


def test_an_event_not_newer_than_what_the_socket_was_shown_is_dropped() -> None:
    async def scenario() -> None:
        store = Store()
        store.workspaces[1] = [workspace(1, 7, version=3)]
        hub = new_hub(store)
        socket = RecordingSocket()
        hub.connect(socket, 1)
        await settle()
        stale = WorkspaceStatusUpdated.of(workspace(1, 7, 2, WorkspaceStatus.PROVISIONING))
        newer = WorkspaceStatusUpdated.of(workspace(1, 7, 4, WorkspaceStatus.ERROR, "disk"))
        hub.dispatch(stale)
        hub.dispatch(newer)
        hub.dispatch(document_event(1, 10, 5))
        hub.dispatch(document_event(1, 10, 4))
        hub.dispatch(newer)
        frames = socket.decoded()
        assert [(f["type"], f["data"]["version"]) for f in frames[1:]] == [
            ("workspace_status", 4),
            ("document_status", 5),
        ]
        assert hub.metrics.events_stale == 3

    run(scenario)


def test_a_client_that_does_not_read_is_closed_and_the_others_carry_on() -> None:
    async def scenario() -> None:
        hub = new_hub(Store(), queue_size=3)
        stalled = StalledSocket(room=2)
        reader = RecordingSocket()
        connection = hub.connect(stalled, 1)
        hub.connect(reader, 1)
        await settle()
        for version in range(1, 11):
            hub.dispatch(document_event(1, 10, version))
            await settle()
        # Snapshot and one event written; the next send waits; three queue; the fifth overflows.
        assert len(stalled.frames) == 2
        assert connection.close_code == CLOSE_SLOW_CLIENT
        assert connection.finished
        assert hub.connection_count == 1
        assert len(reader.frames) == 11
        await connection.stop()
        assert stalled.cancelled_sends == 1

    run(scenario)


def test_a_socket_that_catches_up_gets_its_backlog_in_order_then_direct_writes() -> None:
    async def scenario() -> None:
        hub = new_hub(Store(), queue_size=8)
        socket = StalledSocket(room=2)
        connection = hub.connect(socket, 1)
        await settle()
        for version in range(1, 6):
            hub.dispatch(document_event(1, 10, version))
        socket.drained.set()
        await settle()
        hub.dispatch(document_event(1, 10, 6))
        assert [f["data"]["version"] for f in socket.decoded()[1:]] == [1, 2, 3, 4, 5, 6]
        assert connection.close_code is None
        assert hub.metrics.events_delivered == 6

    run(scenario)


def test_a_socket_whose_send_fails_ends_alone() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        good = RecordingSocket()
        hub.connect(good, 1)
        broken = hub.connect(BrokenSocket(), 1)
        await settle()
        assert isinstance(broken.failure, ConnectionResetError)
        assert broken.finished
        hub.dispatch(document_event(1, 10, 1))
        assert good.kinds() == ["snapshot", "document_status"]

    run(scenario)


def test_a_resync_sends_a_fresh_snapshot_once_however_often_it_is_asked() -> None:
    async def scenario() -> None:
        store = Store()
        hub = new_hub(store)
        socket = RecordingSocket()
        connection = hub.connect(socket, 1)
        await settle()
        store.workspaces[1] = [workspace(1, 7, version=2)]
        assert connection.request_resync()
        assert connection.request_resync()
        hub.dispatch(document_event(1, 10, 1))
        await settle()
        assert socket.kinds() == ["snapshot", "snapshot", "document_status"]
        assert socket.decoded()[1]["workspaces"][0]["version"] == 2
        hub.resync_all()
        await settle()
        assert socket.kinds()[-1] == "snapshot"
        assert hub.metrics.snapshots_sent == 3

    run(scenario)


def test_closing_every_socket_ends_each_with_the_given_code() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        connections = [hub.connect(RecordingSocket(), user) for user in (1, 1, 2)]
        await settle()
        hub.close_all(1001, "bye")
        assert all(c.finished and c.close_code == 1001 for c in connections)
        hub.dispatch(document_event(1, 10, 1))
        assert hub.connection_count == 1  # the user-1 sockets were dropped as they refused

    run(scenario)


def test_a_send_queue_must_hold_at_least_one_frame() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        new_hub(Store(), queue_size=0)


async def gated(
    gate: asyncio.Event,
) -> Callable[[Callable[[int], Snapshot], int], Awaitable[Snapshot]]:
    # A slow read: it sees the data as it begins, and answers once the gate opens.
    async def run_blocking(read: Callable[[int], Snapshot], user_id: int) -> Snapshot:
        snapshot = read(user_id)
        await gate.wait()
        return snapshot

    return run_blocking


def test_snapshot_requests_made_before_a_read_begins_share_it() -> None:
    async def scenario() -> None:
        store = Store()
        gate = asyncio.Event()
        loads = SharedSnapshotReads(store.read, await gated(gate))
        early = [asyncio.create_task(loads(1)) for _ in range(3)]
        await settle()
        # The first read has begun (it waits on the gate): later requests must not join it.
        store.workspaces[1] = [workspace(1, 7, version=1)]
        late = [asyncio.create_task(loads(1)) for _ in range(3)]
        other_user = asyncio.create_task(loads(2))
        await settle()
        gate.set()
        early_snapshots = await asyncio.gather(*early)
        late_snapshots = await asyncio.gather(*late)
        await other_user
        assert all(s is early_snapshots[0] for s in early_snapshots)
        assert all(s is late_snapshots[0] for s in late_snapshots)
        assert early_snapshots[0].workspaces == []
        assert [w.id for w in late_snapshots[0].workspaces] == [7]
        assert store.reads == 3
        assert loads.reads == 3

    run(scenario)


def test_a_failed_snapshot_read_reaches_every_waiter_and_the_next_read_is_fresh() -> None:
    async def scenario() -> None:
        failures = iter([RuntimeError("database is down")])

        def read(user_id: int) -> Snapshot:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return Snapshot(documents=[], workspaces=[])

        async def inline(read: Callable[[int], Snapshot], user_id: int) -> Snapshot:
            return read(user_id)

        loads = SharedSnapshotReads(read, inline)
        waiters = [asyncio.create_task(loads(1)) for _ in range(2)]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert [str(r) for r in results] == ["database is down"] * 2
        assert (await loads(1)).frame == '{"type":"snapshot","documents":[],"workspaces":[]}'

    run(scenario)


def test_a_waiter_that_goes_away_does_not_cancel_the_read_for_the_others() -> None:
    async def scenario() -> None:
        store = Store()
        gate = asyncio.Event()
        loads = SharedSnapshotReads(store.read, await gated(gate))
        leaving = asyncio.create_task(loads(1))
        staying = asyncio.create_task(loads(1))
        await settle()
        leaving.cancel()
        await settle()
        gate.set()
        assert (await staying).workspaces == []
        assert leaving.cancelled()

    run(scenario)


def test_a_socket_closed_by_the_hub_wakes_its_handler_from_its_read() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        connection = hub.connect(RecordingSocket(), 1)
        never = asyncio.Event()

        async def handler() -> str:
            connection.interrupt_on_end(this_task())
            try:
                await never.wait()  # the client's next frame, which never comes
            except asyncio.CancelledError:
                return "woken" if this_task().uncancel() == 0 else "cancelled"
            return "read"

        waiting = asyncio.create_task(handler())
        await settle()
        hub.close_all(1001, "bye")
        await asyncio.wait({waiting}, timeout=1)  # not wait_for: it would cancel the handler
        assert waiting.done()
        assert waiting.result() == "woken"
        assert connection.close_code == 1001

    run(scenario)


def test_a_handler_that_closes_its_own_socket_is_not_cancelled() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        connection = hub.connect(RecordingSocket(), 1)

        async def handler() -> None:
            connection.interrupt_on_end(this_task())
            connection.close(1008, "too many frames")  # as the read loop does
            await connection.stop()  # would raise CancelledError had it cancelled itself

        await asyncio.wait_for(handler(), 1)
        assert connection.finished
        assert connection.close_code == 1008

    run(scenario)


def test_a_socket_that_ends_after_its_read_is_over_cancels_nothing() -> None:
    async def scenario() -> None:
        hub = new_hub(Store())
        connection = hub.connect(RecordingSocket(), 1)
        done = asyncio.Event()

        async def handler() -> None:
            connection.interrupt_on_end(this_task())
            await connection.stop()  # the read ended: the handler closes the socket
            await done.wait()  # closing it, which the hub must not interrupt

        closing = asyncio.create_task(handler())
        await settle()
        hub.close_all(1001, "bye")
        await settle()
        done.set()
        await asyncio.wait_for(closing, 1)
        assert not closing.cancelled()

    run(scenario)
