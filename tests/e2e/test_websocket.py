"""The status WebSocket against a real server process, with a real WebSocket client."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from adapters.auth.jwt_tokens import JwtIssuer
from tests.e2e.conftest import (
    BROKEN_PDF,
    GOOD_TEXT,
    ServerProcess,
    ready_workspace,
    settled_document,
    upload,
    wait_for,
)
from tests.support.live import collect_answer, open_scoped, socket_frames

pytestmark = pytest.mark.slow

Frame = dict[str, Any]


def open_socket(server: ServerProcess, user_id: int, **kwargs: Any) -> ClientConnection:
    ws: ClientConnection = connect(server.ws_url(server.token(user_id)), open_timeout=10, **kwargs)
    return ws


def receive(ws: ClientConnection, timeout: float = 10.0) -> Frame:
    frame: Frame = json.loads(ws.recv(timeout=timeout))
    return frame


def frames_until(
    ws: ClientConnection, done: Callable[[Frame], bool], timeout: float = 20.0
) -> list[Frame]:
    """Every frame up to and including the first for which ``done`` holds."""
    deadline = time.monotonic() + timeout
    frames = []
    while True:
        frame = receive(ws, timeout=max(0.1, deadline - time.monotonic()))
        frames.append(frame)
        if done(frame):
            return frames


def is_document(frame: Frame, document_id: int, status: str) -> bool:
    return bool(
        frame["type"] == "document_status"
        and frame["data"]["document_id"] == document_id
        and frame["data"]["status"] == status
    )


def drain(ws: ClientConnection, quiet: float = 0.5) -> list[Frame]:
    """Every frame that arrives until none has come for ``quiet`` seconds."""
    frames = []
    while True:
        try:
            frames.append(receive(ws, timeout=quiet))
        except TimeoutError:
            return frames


def test_the_first_frame_is_a_snapshot_of_the_users_state(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with server.client(user) as client:
        workspace = ready_workspace(client)
        document = upload(client, workspace["id"], "notes.txt", GOOD_TEXT).json()
        settled = settled_document(client, document["id"])
    with open_socket(server, user) as ws:
        snapshot = receive(ws)
    assert snapshot["type"] == "snapshot"
    assert [w["id"] for w in snapshot["workspaces"]] == [workspace["id"]]
    assert snapshot["workspaces"][0]["status"] == "ready"
    (held,) = snapshot["documents"]
    assert held["id"] == document["id"]
    assert held["processing_status"] == "ready"
    assert held["version"] == settled["version"]
    assert held["progress"] == settled["progress"]


def test_live_events_arrive_in_version_order_up_to_ready(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with open_socket(server, user) as ws, server.client(user) as client:
        assert receive(ws) == {"type": "snapshot", "documents": [], "workspaces": []}
        workspace = ready_workspace(client)
        document = upload(client, workspace["id"], "notes.md", GOOD_TEXT).json()
        frames = frames_until(ws, lambda f: is_document(f, document["id"], "ready"))

    workspace_frames = [f["data"] for f in frames if f["type"] == "workspace_status"]
    assert [(w["status"], w["version"]) for w in workspace_frames] == [
        ("provisioning", 1),
        ("ready", 2),
    ]
    document_frames = [f["data"] for f in frames if f["type"] == "document_status"]
    versions = [d["version"] for d in document_frames]
    assert versions == sorted(set(versions)), "versions must strictly increase"
    assert versions[0] == 1
    statuses = [d["status"] for d in document_frames]
    assert statuses[0] == "pending"
    assert "processing" in statuses
    assert statuses[-1] == "ready"
    completed = [sum(step["completed"] for step in d["progress"]) for d in document_frames]
    assert completed == sorted(completed), "steps only ever tick forward"
    assert completed[-1] == len(document_frames[-1]["progress"]) > 1
    for data in document_frames + workspace_frames:
        assert data["user_id"] == user
        assert {"event_id", "occurred_at", "version", "status"} <= data.keys()
    last = document_frames[-1]
    assert last["chunk_count"] > 0
    assert last["error"] is None


def test_a_failed_document_arrives_with_its_error(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with server.client(user) as client:
        workspace = ready_workspace(client)
        with open_socket(server, user) as ws:
            receive(ws)
            document = upload(client, workspace["id"], "scan.pdf", BROKEN_PDF).json()
            frames = frames_until(ws, lambda f: is_document(f, document["id"], "failed"))
    assert frames[-1]["data"]["error"]


def test_a_socket_never_hears_another_users_events(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    alice, bob = new_user(), new_user()
    with (
        open_socket(server, alice) as alice_ws,
        open_socket(server, bob) as bob_ws,
        server.client(alice) as alice_api,
        server.client(bob) as bob_api,
    ):
        receive(alice_ws)
        receive(bob_ws)
        alice_space = ready_workspace(alice_api, "Alice's")
        bob_space = ready_workspace(bob_api, "Bob's")
        alice_doc = upload(alice_api, alice_space["id"], "a.txt", GOOD_TEXT).json()
        bob_doc = upload(bob_api, bob_space["id"], "b.txt", GOOD_TEXT).json()
        alice_frames = frames_until(alice_ws, lambda f: is_document(f, alice_doc["id"], "ready"))
        bob_frames = frames_until(bob_ws, lambda f: is_document(f, bob_doc["id"], "ready"))
        alice_frames += drain(alice_ws)
        bob_frames += drain(bob_ws)
    assert {f["data"]["user_id"] for f in alice_frames} == {alice}
    assert {f["data"]["user_id"] for f in bob_frames} == {bob}


@pytest.mark.parametrize("make_token", ["missing", "forged", "expired", "garbage"])
def test_a_bad_token_is_refused_at_the_handshake(server: ServerProcess, make_token: str) -> None:
    tokens = {
        "missing": "",
        "forged": JwtIssuer("some-other-secret-key-here").issue(5),
        "expired": JwtIssuer(server.secret, clock=lambda: time.time() - 7200).issue(5, 60),
        "garbage": "%00%ff;DROP",
    }
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url(tokens[make_token]), open_timeout=10)
    assert refused.value.response.status_code == 401


def test_a_foreign_browser_origin_is_refused(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server, 5, origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_the_servers_own_origin_and_a_client_without_origin_are_accepted(
    server: ServerProcess,
) -> None:
    with open_socket(server, 5, origin=server.origin) as ws:
        assert receive(ws)["type"] == "snapshot"
    with open_socket(server, 5) as ws:
        assert receive(ws)["type"] == "snapshot"


def test_an_origin_on_the_allow_list_is_accepted(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(environ={"ALLOWED_ORIGINS": "https://app.example.com"})
    with open_socket(server, 5, origin="https://app.example.com") as ws:
        assert receive(ws)["type"] == "snapshot"
    with pytest.raises(InvalidStatus):
        open_socket(server, 5, origin="https://other.example.com")


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("x" * 10_000, 1009),
        (b"\x00\x01binary", 1003),
        ("{not json", 1003),
    ],
)
def test_a_bad_frame_closes_only_that_socket(
    server: ServerProcess, new_user: Callable[[], int], send: str | bytes, code: int
) -> None:
    user = new_user()
    with open_socket(server, user) as bad, open_socket(server, user) as good:
        receive(bad)
        receive(good)
        bad.send(send)
        with pytest.raises(ConnectionClosed) as closed:
            receive(bad)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code
        with server.client(user) as client:
            workspace = client.post("/api/workspaces", json={"name": "Still here"}).json()
        frames = frames_until(good, lambda f: f["type"] == "workspace_status")
        assert frames[-1]["data"]["workspace_id"] == workspace["id"]


def test_a_frame_larger_than_the_protocol_limit_closes_the_socket(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    with open_socket(server, new_user()) as ws:
        receive(ws)
        ws.send("x" * 200_000)
        with pytest.raises(ConnectionClosed) as closed:
            receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


def test_many_sockets_of_one_user_connecting_at_once_each_get_the_snapshot_then_events(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with server.client(user) as client:
        existing = ready_workspace(client, "Existing")
        with ExitStack() as stack, ThreadPoolExecutor(max_workers=16) as pool:
            opened = pool.map(lambda _: open_socket(server, user), range(32))
            sockets = [stack.enter_context(ws) for ws in opened]
            snapshots = [receive(ws) for ws in sockets]
            created = client.post("/api/workspaces", json={"name": "Created"}).json()
            for ws in sockets:
                frames = frames_until(
                    ws,
                    lambda f: (
                        f["type"] == "workspace_status"
                        and f["data"]["workspace_id"] == created["id"]
                        and f["data"]["status"] == "ready"
                    ),
                )
                versions = [
                    f["data"]["version"]
                    for f in frames
                    if f["data"]["workspace_id"] == created["id"]
                ]
                assert versions == [1, 2]
                assert all(f["data"]["user_id"] == user for f in frames)
    for snapshot in snapshots:
        assert snapshot["type"] == "snapshot"
        assert [(w["id"], w["status"]) for w in snapshot["workspaces"]] == [
            (existing["id"], "ready")
        ]


def test_unknown_frames_are_ignored_and_a_resync_request_gets_a_fresh_snapshot(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with open_socket(server, user) as ws, server.client(user) as client:
        receive(ws)
        ws.send(json.dumps({"type": "hello", "from": "a newer client"}))
        workspace = ready_workspace(client)
        frames_until(ws, lambda f: f["type"] == "workspace_status" and f["data"]["version"] == 2)
        ws.send(json.dumps({"type": "resync"}))
        snapshot = receive(ws)
    assert snapshot["type"] == "snapshot"
    assert [(w["id"], w["status"]) for w in snapshot["workspaces"]] == [(workspace["id"], "ready")]


def test_tokens_never_appear_in_the_server_log(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    token = server.token(new_user())
    with connect(server.ws_url(token), open_timeout=10) as ws:
        receive(ws)
    httpx.get(f"{server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {token}"})
    httpx.get(f"{server.base_url}/api/workspaces?token={token}")
    log = wait_for(lambda: (text := server.log()) and "/ws?token=[redacted]" in text and text)
    assert token not in log
    assert token.split(".")[2] not in log


def test_a_client_that_does_not_read_is_closed_without_stalling_another(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    server = make_server(args=["--socket-queue", "16"])
    user = new_user()
    with server.client(user) as client:
        workspace = ready_workspace(client)
        for n in range(60):
            upload(client, workspace["id"], f"backlog-{n}.md", GOOD_TEXT)
        # A tiny receive buffer, a client library that stops reading when one frame waits,
        # and no compression, so that what the server sends really fills the connection.
        stalled_sock = socket.create_connection(("127.0.0.1", server.port))
        stalled_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        stalled = connect(
            server.ws_url(server.token(user)),
            sock=stalled_sock,
            max_queue=1,
            compression=None,
            open_timeout=10,
        )
        with stalled, open_socket(server, user) as reader:
            receive(reader)
            # Each request makes the server send the stalled client a large snapshot, until
            # the connection's buffers are full and its send queue starts to fill.
            for _ in range(150):
                stalled.send(json.dumps({"type": "resync"}))
                time.sleep(0.02)  # requests that arrive together are answered by one snapshot
            uploaded: list[int] = []
            for n in range(200):
                response = upload(client, workspace["id"], f"live-{n}.md", GOOD_TEXT)
                assert response.status_code == 202, response.text
                uploaded.append(response.json()["id"])
                if server.metric("websocket_slow_clients_closed_total") >= 1:
                    break
            assert server.metric("websocket_slow_clients_closed_total") == 1
            ready: set[int] = set()

            def all_ready(frame: Frame) -> bool:
                if frame["type"] == "document_status" and frame["data"]["status"] == "ready":
                    ready.add(frame["data"]["document_id"])
                return ready >= set(uploaded)

            frames_until(reader, all_ready, timeout=60)
            assert server.metric("websocket_connections") == 1


# -- protocol 2 ---------------------------------------------------------------------------------


def test_a_live_socket_changes_scope_and_gets_only_that_scopes_deltas(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    with server.client(user) as client:
        first, second = ready_workspace(client, "First"), ready_workspace(client, "Second")
        with open_scoped(server.port, server.token(user), ["workspaces"]) as ws:
            listed = collect_answer(socket_frames(ws), "workspaces")
            assert sorted(listed.ids) == sorted([first["id"], second["id"]])
            ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "scopes": ["workspaces", f"workspace:{second['id']}"],
                        "cursor": None,
                    }
                )
            )
            fresh = collect_answer(socket_frames(ws), f"workspace:{second['id']}")
            assert (fresh.mode, fresh.ids) == ("snapshot", [])
            upload(client, first["id"], "elsewhere.md", GOOD_TEXT)
            shown = upload(client, second["id"], "shown.md", GOOD_TEXT).json()
            frames = frames_until(ws, lambda f: is_document(f, shown["id"], "ready"), timeout=30)
    deltas = [f for f in frames if f["type"] == "document_status"]
    assert {f["data"]["document_id"] for f in deltas} == {shown["id"]}
    assert all(f["cursor"].startswith(listed.cursor.rsplit(":", 1)[0]) for f in deltas)


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "subscribe", "scopes": ["folders:1"]}',
        '{"type": "subscribe", "scopes": ["workspaces"], "cursor": 12}',
        '{"type": "resync", "now": true}',
        '{"no": "type"}',
    ],
)
def test_a_malformed_frame_closes_the_socket_with_1003_and_a_reason(
    server: ServerProcess, new_user: Callable[[], int], frame: str
) -> None:
    with open_scoped(server.port, server.token(new_user()), ["workspaces"]) as ws:
        collect_answer(socket_frames(ws), "workspaces")
        ws.send(frame)
        with pytest.raises(ConnectionClosed):
            receive(ws)
    assert ws.close_code == 1003
    assert ws.close_reason


def test_a_bad_scope_or_cursor_in_the_url_refuses_the_handshake(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    token = server.token(new_user())
    for query in (f"token={token}&scope=everything", f"token={token}&cursor=x"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{server.port}/ws?{query}", open_timeout=10)
        assert refused.value.response.status_code == 400
