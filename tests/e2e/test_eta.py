"""A processing document's estimate of the time it has left, in the API and in pushed frames."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import GOOD_TEXT, ServerProcess, ready_workspace, settled_document, upload

pytestmark = pytest.mark.slow


def test_a_processing_document_announces_its_eta_once_similar_documents_finished(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    # Paced announcements, so that the document is seen while it is processing.
    server = make_server(args=["--step-delay", "0.3"])
    user = new_user()
    with server.client(user) as client:
        workspace = ready_workspace(client)
        first = upload(client, workspace["id"], "first.md", GOOD_TEXT).json()
        assert first["eta_seconds"] is None  # nothing has finished yet: no made-up number
        finished = settled_document(client, first["id"])
        assert finished["processing_status"] == "ready"
        assert finished["eta_seconds"] is None
        durations = [step for step in finished["progress"] if "finished_at" in step]
        assert len(durations) == len(finished["progress"])

        with connect(server.ws_url(server.token(user)), open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
            second = upload(client, workspace["id"], "second.md", GOOD_TEXT * 2).json()
            seen: list[dict[str, Any]] = []
            deadline = time.monotonic() + 30
            while not seen or seen[-1]["processing_status"] == "pending":
                assert time.monotonic() < deadline, "the document never started"
                seen.append(client.get(f"/api/documents/{second['id']}").json())
            while seen[-1]["processing_status"] == "processing":
                assert time.monotonic() < deadline, "the document never finished"
                seen.append(client.get(f"/api/documents/{second['id']}").json())
                time.sleep(0.05)
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["status"] != "ready":
                frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if (
                    frame["type"] == "document_status"
                    and frame["data"]["document_id"] == second["id"]
                ):
                    frames.append(frame["data"])

    processing = [body for body in seen if body["processing_status"] == "processing"]
    assert any(isinstance(body["eta_seconds"], float) for body in processing), processing
    assert all(b["eta_seconds"] is None or b["eta_seconds"] >= 0 for b in processing)
    pushed = [frame["eta_seconds"] for frame in frames if frame["status"] == "processing"]
    assert isinstance(pushed[-1], float), pushed
    assert pushed[-1] >= 0
    assert frames[-1]["eta_seconds"] is None
    # Each number the API showed is one a frame pushed: the same estimate on both paths.
    shown = {body["eta_seconds"] for body in processing if body["eta_seconds"] is not None}
    assert shown <= set(pushed)
