"""Per-user limits on a real server: quotas and upload rates are 429s, a full disk a 507."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from tests.e2e.conftest import GOOD_TEXT, ServerProcess, ready_workspace, upload
from tests.e2e.test_websocket import open_socket, receive


def test_the_upload_past_the_document_quota_is_429_and_stores_nothing(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], tmp_path: Path
) -> None:
    server = make_server(environ={"QUOTA_DOCUMENTS": "2", "STORAGE_DIR": str(tmp_path)})
    user = new_user()
    with server.client(user) as api:
        space = ready_workspace(api)
        for name in ("a.md", "b.md"):
            assert upload(api, space["id"], name, GOOD_TEXT).status_code == 202
        refused = upload(api, space["id"], "c.md", GOOD_TEXT)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["limit"] == "QUOTA_DOCUMENTS"
        assert "2 documents" in refused.json()["error"]
        assert _filenames(api, space["id"]) == {"a.md", "b.md"}
    with server.client(new_user()) as other:
        assert upload(other, ready_workspace(other)["id"], "c.md", GOOD_TEXT).status_code == 202


def test_uploads_past_the_rate_are_429_with_retry_after(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    server = make_server(environ={"UPLOADS_PER_MINUTE": "2"})
    user = new_user()
    with server.client(user) as api:
        space = ready_workspace(api)
        answers = [upload(api, space["id"], f"{n}.md", GOOD_TEXT) for n in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["limit"] == "UPLOADS_PER_MINUTE"
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 30
        assert _filenames(api, space["id"]) == {"0.md", "1.md"}
    assert "user_limit_refusals_total" in _metrics(server)


def test_a_full_disk_is_507_and_leaves_no_file_and_no_document(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], tmp_path: Path
) -> None:
    storage = tmp_path / "files"
    server = make_server(
        environ={"STORAGE_DIR": str(storage)}, module="tests.support.full_disk_server"
    )
    user = new_user()
    with server.client(user) as api:
        space = ready_workspace(api)
        answer = upload(api, space["id"], "big.md", GOOD_TEXT * 100)
        assert answer.status_code == 507
        assert "no room" in answer.json()["error"]
        assert _filenames(api, space["id"]) == set()
    assert [p for p in storage.rglob("*") if p.is_file()] == []


def test_a_client_sending_frames_too_fast_is_closed_with_1008(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    server = make_server(environ={"CLIENT_FRAMES_PER_SECOND": "5"})
    with open_socket(server, new_user()) as ws:
        assert receive(ws)["type"] == "snapshot"
        # The server may close while the flood is still being sent.
        with pytest.raises(ConnectionClosed) as closed:
            _flood_then_receive(ws, 50)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


def _flood_then_receive(ws: ClientConnection, frames: int) -> None:
    for _ in range(frames):
        ws.send('{"type": "ping"}')
    while True:
        receive(ws)


def _filenames(api: httpx.Client, workspace_id: int) -> set[str]:
    listed = api.get(f"/api/workspaces/{workspace_id}/documents").json()["documents"]
    return {document["filename"] for document in listed}


def _metrics(server: ServerProcess) -> str:
    return httpx.get(f"{server.base_url}/metrics", timeout=5.0).text
