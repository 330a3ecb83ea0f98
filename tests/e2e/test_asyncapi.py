"""A real server serves its AsyncAPI document, and every frame it pushes matches its schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from websockets.sync.client import connect

from entrypoints.asyncapi import asyncapi_document, frame_schemas
from tests.e2e.conftest import BROKEN_PDF, GOOD_TEXT, ServerProcess, ready_workspace, upload

pytestmark = pytest.mark.slow


def test_the_server_serves_the_generated_document(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.base_url}/asyncapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(asyncapi_document()))


def test_every_frame_pushed_during_a_run_matches_its_schema(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    user = new_user()
    schemas = {kind: Draft7Validator(schema) for kind, schema in frame_schemas().items()}
    frames: list[dict[str, Any]] = []
    with (
        connect(server.ws_url(server.token(user)), open_timeout=10) as ws,
        server.client(user) as client,
    ):
        frames.append(json.loads(ws.recv(timeout=10)))
        workspace = ready_workspace(client)
        ids = {
            upload(client, workspace["id"], name, body).json()["id"]
            for name, body in (("notes.txt", GOOD_TEXT), ("broken.pdf", BROKEN_PDF))
        }
        settled: set[int] = set()
        while settled != ids:
            frame = json.loads(ws.recv(timeout=20))
            frames.append(frame)
            data = frame.get("data", {})
            if data.get("status") in ("ready", "failed") and data.get("document_id") in ids:
                settled.add(data["document_id"])
        ws.send(json.dumps({"type": "resync"}))
        while True:  # events still in flight may come before the fresh snapshot
            frames.append(json.loads(ws.recv(timeout=10)))
            if frames[-1]["type"] == "snapshot":
                break
    kinds = {frame["type"] for frame in frames}
    assert kinds == {"snapshot", "document_status", "workspace_status"}
    for frame in frames:
        schemas[frame["type"]].validate(frame)
