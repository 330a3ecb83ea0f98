"""The operator socket ``/admin/ws``: live console figures for operators, refused to others."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jsonschema import Draft7Validator
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from adapters.auth.jwt_tokens import JwtIssuer
from adapters.bootstrap import Services
from domain.events import WORK_QUEUES, DocumentUploaded
from entrypoints.asyncapi import frame_schemas
from entrypoints.cli import main
from entrypoints.server.admin import OPERATOR_FIGURES, OPERATOR_SOCKET_PATH
from entrypoints.server.sockets import CLOSE_POLICY_VIOLATION


def token(services: Services, user_id: int, role: str | None = None, ttl: int = 600) -> str:
    return JwtIssuer(services.settings.secret_key).issue(user_id, ttl, role=role)


def publish_uploads(services: Services, count: int) -> None:
    publisher = services.broker.publisher()
    for n in range(count):
        publisher.publish(
            DocumentUploaded(
                document_id=100 + n, user_id=2, workspace_id=3, file_path="f", version=1
            )
        )


def denial(client: TestClient, url: str) -> WebSocketDenialResponse:
    """How the server refused to open the socket at ``url``."""
    try:
        with client.websocket_connect(url):
            pass
    except WebSocketDenialResponse as refused:
        return refused
    raise AssertionError(f"{url} was opened")


def stage(frame: dict[str, Any], name: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [row for row in frame["stages"] if row["stage"] == name]
    (row,) = rows
    return row


def test_an_operator_is_pushed_the_figures_and_their_changes(
    services: Services, client: TestClient
) -> None:
    validator = Draft7Validator(frame_schemas()[OPERATOR_FIGURES])
    url = f"{OPERATOR_SOCKET_PATH}?token={token(services, 1, role='operator')}"
    with client.websocket_connect(url) as ws:
        first = json.loads(ws.receive_text())
        validator.validate(first)
        assert first["type"] == OPERATOR_FIGURES
        idle = stage(first, "ingestion")
        assert (idle["depth"], idle["oldest_age_seconds"]) == (0, None)
        assert {row["stage"] for row in first["stages"]} >= {"provisioning", "graph"}

        publish_uploads(services, 2)
        started = time.monotonic()
        pushed = json.loads(ws.receive_text())
        validator.validate(pushed)
        # Pushed by the server at its next reading, without the client asking.
        assert time.monotonic() - started < 10
        busy = stage(pushed, "ingestion")
        assert busy["depth"] == 2
        assert busy["oldest_age_seconds"] is not None
        assert busy["oldest_age_seconds"] >= 0
        assert stage(pushed, "embeddings")["depth"] == 0

        older = stage(json.loads(ws.receive_text()), "ingestion")
        assert older["depth"] == 2
        assert older["oldest_age_seconds"] > busy["oldest_age_seconds"], "the age grows"


@pytest.mark.parametrize(
    ("role", "status"), [(None, 403), ("auditor", 403)], ids=["no role", "another role"]
)
def test_a_token_without_the_operator_role_is_refused_with_403(
    services: Services, client: TestClient, role: str | None, status: int
) -> None:
    url = f"{OPERATOR_SOCKET_PATH}?token={token(services, 5, role=role)}"
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(url):
        pass
    assert refused.value.status_code == status
    assert "operator role" in refused.value.json()["error"]


def test_a_missing_or_bad_token_is_refused_with_401(services: Services, client: TestClient) -> None:
    for url in (OPERATOR_SOCKET_PATH, f"{OPERATOR_SOCKET_PATH}?token=nonsense"):
        assert denial(client, url).status_code == 401


def test_the_socket_closes_with_1008_when_the_operator_token_expires(
    services: Services, client: TestClient
) -> None:
    url = f"{OPERATOR_SOCKET_PATH}?token={token(services, 1, role='operator', ttl=2)}"
    with client.websocket_connect(url) as ws:
        ws.receive_text()
        code = None
        while code is None:
            try:
                ws.receive_text()
            except WebSocketDisconnect as closed:
                code = closed.code
    assert code == CLOSE_POLICY_VIOLATION


def test_the_http_route_answers_the_same_figures(services: Services, client: TestClient) -> None:
    publish_uploads(services, 3)
    headers = {"Authorization": f"Bearer {token(services, 1, role='operator')}"}
    answer = client.get("/api/admin/queues", headers=headers)
    assert answer.status_code == 200, answer.text
    assert stage(answer.json(), "ingestion")["depth"] == 3
    stranger = {"Authorization": f"Bearer {token(services, 2)}"}
    assert client.get("/api/admin/queues", headers=stranger).status_code == 403


def test_the_admin_queues_command_prints_a_line_per_stage(
    services: Services, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "memory://")
    monkeypatch.setenv("TRANSPORT", "memory")
    publish_uploads(services, 2)
    overrides = {"operator_console": services.operator_console}
    assert main(["admin", "queues"], overrides=overrides) == 0
    rows = {row["stage"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == set(WORK_QUEUES)
    assert rows["ingestion"]["depth"] == 2
    assert rows["ingestion"]["oldest_age_seconds"] >= 0
    assert rows["graph"] == {**rows["graph"], "depth": 0, "oldest_age_seconds": None}
