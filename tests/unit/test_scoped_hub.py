"""Scoped subscriptions on the hub, over the in-memory repository and its change feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from adapters.memory.feed import InMemoryChangeFeed
from adapters.memory.repository import InMemoryStatusRepository
from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.entities import Document, Workspace
from domain.events import status_event_for
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from entrypoints.server.hub import SocketHub
from entrypoints.server.metrics import ServerMetrics
from entrypoints.server.protocol import ScopeName, Subscribe, parse_scopes
from entrypoints.server.snapshots import ScopeReader, Snapshot
from tests.unit.test_hub import RecordingSocket, settle

T = TypeVar("T")
USER = 1


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(test())


async def inline(read: Callable[[Any], Any], key: Any) -> Any:
    return read(key)


async def never(user_id: int) -> Snapshot:
    raise AssertionError("a scoped socket never asks for a whole snapshot")


class World:
    """A repository, its feed, and a hub answering from it."""

    def __init__(self, *, first_page: int = 100, max_frame_bytes: int = 256 * 1024) -> None:
        self.repository = InMemoryStatusRepository()
        feed = InMemoryChangeFeed(self.repository)
        self.reader = ScopeReader(lambda: feed, first_page=first_page, run_blocking=inline)
        self.hub = SocketHub(
            ServerMetrics(), never, reader=self.reader, max_frame_bytes=max_frame_bytes
        )

    async def start(self) -> None:
        self.hub.epoch = await self.reader.epoch()

    def workspace(self, user_id: int = USER) -> Workspace:
        return self.repository.add_workspace(user_id=user_id, name="Reports")

    def document(self, workspace: Workspace) -> Document:
        document = self.repository.add_document(
            user_id=workspace.user_id,
            workspace_id=workspace.id,
            filename="notes.txt",
            storage_key="k",
            progress=Progress(),
        )
        return document

    def advance(self, document: Document) -> Document:
        """One change of ``document``, announced to the hub as the bridge would."""
        current = self.repository.get_document(document.id)
        assert current is not None
        changed = self.repository.update_document_status(
            DocumentStatusChange(
                document_id=document.id,
                status=DocumentProcessingStatus.PROCESSING,
                progress=current.progress,
            )
        ).unwrap()
        self.hub.dispatch(status_event_for(changed))
        return changed

    def connect(self, scopes: list[str], cursor: str | None = None) -> RecordingSocket:
        socket = RecordingSocket()
        self.hub.connect(socket, USER, Subscribe(subscription(scopes), cursor))
        return socket


def subscription(scopes: list[str]) -> tuple[ScopeName, ...]:
    parsed = parse_scopes(scopes)
    value = getattr(parsed, "value", None)
    assert isinstance(value, tuple)
    return value


def position(cursor: str) -> int:
    return int(cursor.rsplit(":", 1)[1])


def syncs(socket: RecordingSocket) -> list[dict[str, Any]]:
    return [f for f in socket.decoded() if f["type"] == "sync"]


def test_a_scoped_socket_gets_a_bounded_first_page_then_only_its_scopes_events() -> None:
    async def scenario() -> None:
        world = World(first_page=3)
        await world.start()
        shown, other = world.workspace(), world.workspace()
        documents = [world.document(shown) for _ in range(5)]
        elsewhere = world.document(other)
        socket = world.connect([f"workspace:{shown.id}"])
        await settle()
        (first,) = syncs(socket)
        assert (first["mode"], first["reason"], first["last"]) == ("snapshot", None, True)
        assert [e["id"] for e in first["entities"]] == [d.id for d in documents[:3]]
        assert first["more"] == str(documents[2].id)
        changed_document = world.advance(documents[4])
        world.advance(elsewhere)
        world.repository.update_workspace_status(
            WorkspaceStatusChange(workspace_id=shown.id, status=WorkspaceStatus.READY)
        ).unwrap()
        changed = world.repository.get_workspace(shown.id)
        assert changed is not None
        world.hub.dispatch(status_event_for(changed))
        deltas = socket.decoded()[1:]
        assert [(f["type"], f["data"]["document_id"]) for f in deltas] == [
            ("document_status", documents[4].id)
        ]
        assert deltas[0]["cursor"] == f"{world.hub.epoch}:{changed_document.position}"

    run(scenario)


def test_a_socket_resuming_from_its_cursor_gets_exactly_what_changed_since() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspace = world.workspace()
        documents = [world.document(workspace) for _ in range(10)]
        first = world.connect(["workspaces", f"workspace:{workspace.id}"])
        await settle()
        cursor = syncs(first)[-1]["cursor"]
        assert {s["cursor"] for s in syncs(first)} == {cursor}
        missed = [world.advance(d) for d in documents[2:5]]
        world.advance(missed[0])
        again = world.connect(["workspaces", f"workspace:{workspace.id}"], cursor)
        await settle()
        answers = {s["scope"]: s for s in syncs(again)}
        assert answers["workspaces"]["mode"] == "resumed"
        assert answers["workspaces"]["entities"] == []
        resumed = answers[f"workspace:{workspace.id}"]
        assert resumed["mode"] == "resumed"
        assert sorted(e["id"] for e in resumed["entities"]) == [d.id for d in missed]
        assert {e["id"]: e["version"] for e in resumed["entities"]}[missed[0].id] == 3
        assert position(resumed["cursor"]) > position(cursor)

    run(scenario)


def test_cursors_it_cannot_honour_get_a_snapshot_that_says_why() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspace = world.workspace()
        world.document(workspace)
        epoch = world.hub.epoch
        cases = {
            "garbage": "malformed cursor",
            "someotherepoch:1": "cursor of another epoch",
            f"{epoch}:999": "unknown cursor",
        }
        for cursor, reason in cases.items():
            socket = world.connect([f"workspace:{workspace.id}"], cursor)
            await settle()
            (answer,) = syncs(socket)
            assert (answer["mode"], answer["reason"]) == ("snapshot", reason)
            assert len(answer["entities"]) == 1

    run(scenario)


def test_a_cursor_too_far_behind_gets_a_snapshot() -> None:
    async def scenario() -> None:
        world = World()
        world.reader = ScopeReader(
            lambda: InMemoryChangeFeed(world.repository), resume_limit=2, run_blocking=inline
        )
        world.hub.reader = world.reader
        await world.start()
        workspace = world.workspace()
        documents = [world.document(workspace) for _ in range(3)]
        socket = world.connect([f"workspace:{workspace.id}"], f"{world.hub.epoch}:0")
        await settle()
        (answer,) = syncs(socket)
        assert (answer["mode"], answer["reason"]) == ("snapshot", "cursor too far behind")
        assert [e["id"] for e in answer["entities"]] == [d.id for d in documents]

    run(scenario)


def test_a_live_socket_changes_scope_without_reconnecting() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        first, second = world.workspace(), world.workspace()
        a, b = world.document(first), world.document(second)
        socket = world.connect(["workspaces", f"workspace:{first.id}"])
        await settle()
        connection = next(iter(world.hub._by_user[USER]))
        assert connection.subscribe(
            Subscribe(subscription(["workspaces", f"documents:{b.id}"]), None)
        )
        await settle()
        # Only the new scope is answered; the kept one goes on.
        assert [s["scope"] for s in syncs(socket)] == [
            "workspaces",
            f"workspace:{first.id}",
            f"documents:{b.id}",
        ]
        world.advance(a)
        world.advance(b)
        deltas = [f["data"]["document_id"] for f in socket.decoded() if f["type"] != "sync"]
        assert deltas == [b.id]

    run(scenario)


def test_a_large_answer_is_sent_in_frames_within_the_bound() -> None:
    async def scenario() -> None:
        world = World(first_page=200, max_frame_bytes=8 * 1024)
        await world.start()
        workspace = world.workspace()
        documents = [world.document(workspace) for _ in range(150)]
        socket = world.connect([f"workspace:{workspace.id}"])
        await settle()
        parts = syncs(socket)
        assert len(parts) > 5
        assert all(len(frame.encode()) <= 8 * 1024 for frame in socket.frames)
        assert [e["id"] for p in parts for e in p["entities"]] == [d.id for d in documents]
        assert [p["last"] for p in parts].count(True) == 1

    run(scenario)


def test_a_reconnect_storm_costs_one_read_per_distinct_scope_and_cursor() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspaces = [world.workspace() for _ in range(4)]
        for workspace in workspaces:
            for _ in range(3):
                world.document(workspace)
        cursor = f"{world.hub.epoch}:2"
        sockets = [
            world.connect([f"workspace:{workspaces[i % 4].id}"], cursor) for i in range(1000)
        ]
        await settle()
        assert all(len(syncs(s)) == 1 for s in sockets)
        assert world.reader.reads == 4
        # Every socket of one scope was sent the very same encoded answer.
        assert len({json.dumps(syncs(s)[0]) for s in sockets}) == 4

    run(scenario)


def test_after_missed_events_a_scoped_socket_is_resumed_not_resent() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspace = world.workspace()
        documents = [world.document(workspace) for _ in range(5)]
        socket = world.connect([f"workspace:{workspace.id}"])
        await settle()
        # Changed while the broadcast was down: the hub never heard of it.
        world.repository.update_document_status(
            DocumentStatusChange(
                document_id=documents[1].id, status=DocumentProcessingStatus.FAILED
            )
        ).unwrap()
        world.hub.resync_all()
        await settle()
        answer = syncs(socket)[-1]
        assert answer["mode"] == "resumed"
        assert [e["id"] for e in answer["entities"]] == [documents[1].id]

    run(scenario)


def test_a_socket_joins_a_running_read_only_if_no_event_of_its_user_came_since_it_began() -> None:
    async def scenario() -> None:
        world = World()
        gate = asyncio.Event()

        async def slow(read: Callable[[Any], Any], key: Any) -> Any:
            value = read(key)
            await gate.wait()
            return value

        world.reader = ScopeReader(lambda: InMemoryChangeFeed(world.repository), run_blocking=slow)
        world.hub = SocketHub(ServerMetrics(), never, reader=world.reader)
        gate.set()
        world.hub.epoch = await world.reader.epoch()
        gate.clear()
        workspace = world.workspace()
        document = world.document(workspace)
        scope = [f"workspace:{workspace.id}"]
        early = [world.connect(scope) for _ in range(3)]
        await settle()
        joined = world.connect(scope)  # the read is running, nothing happened since: joins it
        await settle()
        assert world.reader.reads == 1
        world.advance(document)
        late = world.connect(scope)  # an event came since the read began: it must read anew
        await settle()
        gate.set()
        await settle()
        assert world.reader.reads == 2
        for socket in [*early, joined, late]:
            shown = {e["id"]: e["version"] for s in syncs(socket) for e in s["entities"]}
            deltas = [f["data"]["version"] for f in socket.decoded() if f["type"] != "sync"]
            assert max([shown[document.id], *deltas]) == 2

    run(scenario)


def test_sockets_trickling_in_share_a_finished_read_until_an_event_of_their_user() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        workspace = world.workspace()
        document = world.document(workspace)
        scope = [f"workspace:{workspace.id}"]
        for _ in range(5):
            world.connect(scope)
            await settle()
        assert world.reader.reads == 1
        world.advance(document)
        after = world.connect(scope)
        await settle()
        assert world.reader.reads == 2
        assert syncs(after)[0]["entities"][0]["version"] == 2
        world.hub.resync_all()  # events may have been missed: nothing finished is reused
        await settle()
        world.connect(scope)
        await settle()
        assert world.reader.reads > 3

    run(scenario)
