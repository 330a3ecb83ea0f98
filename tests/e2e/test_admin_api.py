"""The operator's console over HTTP: operators see and settle dead letters; nobody else gets in."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from adapters.auth.jwt_tokens import JwtIssuer
from adapters.bootstrap import Services
from adapters.memory.broker import InMemoryBroker
from domain.events import WORK_QUEUES, DocumentUploaded
from entrypoints.cli import main
from entrypoints.server.openapi import OperationRoute


def bearer(services: Services, user_id: int, role: str | None = None) -> dict[str, str]:
    token = JwtIssuer(services.settings.secret_key).issue(user_id, 600, role=role)
    return {"Authorization": f"Bearer {token}"}


def poison(services: Services, document_id: int, reason: str = "RuntimeError: refused") -> None:
    broker = services.broker
    assert isinstance(broker, InMemoryBroker)
    broker.publisher().publish(
        DocumentUploaded(
            document_id=document_id, user_id=2, workspace_id=3, file_path="f", version=1
        )
    )
    queue = broker.work_queue("ingestion", WORK_QUEUES["ingestion"])
    delivery = queue.receive(1.0)
    assert delivery is not None
    delivery.dead_letter(reason)
    queue.close()


def admin_routes(client: TestClient) -> list[OperationRoute]:
    return [
        route
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, OperationRoute) and route.path.startswith("/api/admin")
    ]


def test_every_admin_route_refuses_a_non_operator_with_403_json_and_changes_nothing(
    services: Services, client: TestClient
) -> None:
    poison(services, 11)
    routes = admin_routes(client)
    assert len(routes) >= 8
    for route in routes:
        for headers, status, code in (
            (bearer(services, 5), 403, "forbidden"),
            (bearer(services, 5, role="auditor"), 403, "forbidden"),
            ({}, 401, "unauthorized"),
        ):
            answer = client.request(
                route.method,
                route.path,
                headers=headers,
                json={"queue": "ingestion", "letter_id": "x"},
            )
            assert answer.status_code == status, (route.path, answer.text)
            assert answer.json()["code"] == code
    assert len(services.broker.dead_letters().of("ingestion")) == 1
    assert services.operator_console.actions() == []


def test_an_operator_lists_requeues_and_discards_and_every_action_is_shown(
    services: Services, client: TestClient
) -> None:
    operator = bearer(services, 9, role="operator")
    poison(services, 11)
    poison(services, 12, "TimeoutError: slow")
    listed = client.get("/api/admin/dead-letters", headers=operator)
    assert listed.status_code == 200
    letters = listed.json()["queues"]["ingestion"]
    assert [(x["entity"]["document_id"], x["reason"]) for x in letters] == [
        (11, "RuntimeError: refused"),
        (12, "TimeoutError: slow"),
    ]
    assert letters[0]["attempts"] == 1
    assert letters[0]["first_failed_at"]
    first, second = (x["letter_id"] for x in letters)
    requeued = client.post(
        "/api/admin/dead-letters/requeue",
        headers=operator,
        json={"queue": "ingestion", "letter_id": first},
    )
    assert requeued.json() == {"queue": "ingestion", "count": 1}
    again = client.post(
        "/api/admin/dead-letters/requeue",
        headers=operator,
        json={"queue": "ingestion", "letter_id": first},
    )
    assert again.status_code == 404
    assert again.json()["code"] == "not_found"
    unknown = client.post(
        "/api/admin/dead-letters/requeue-all", headers=operator, json={"queue": "nowhere"}
    )
    assert unknown.status_code == 404
    missing = client.post("/api/admin/dead-letters/discard", headers=operator, json={"queue": 1})
    assert missing.status_code == 422
    assert missing.json()["field"] == "queue"
    discarded = client.post(
        "/api/admin/dead-letters/discard",
        headers=operator,
        json={"queue": "ingestion", "letter_id": second},
    )
    assert discarded.status_code == 200
    stages = client.get("/api/admin/stages", headers=operator).json()
    assert stages["dead_letters"]["ingestion"] == 0
    actions = client.get("/api/admin/actions", headers=operator).json()["actions"]
    assert [(a["actor"], a["action"], a["outcome"]) for a in actions] == [
        ("user 9", "discard", "done"),
        ("user 9", "requeue", "not found"),
        ("user 9", "requeue", "done"),
    ]
    assert client.get("/api/admin/workers", headers=operator).json() == {"workers": []}
    assert client.get("/api/admin/stuck", headers=operator).json() == {
        "documents": [],
        "recoveries": [],
    }
    page = client.get("/admin")
    assert page.status_code == 200
    assert "admin.js" in page.text


def test_the_admin_command_lists_and_requeues_recording_who(
    services: Services, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "memory://")
    monkeypatch.setenv("TRANSPORT", "memory")
    poison(services, 21)
    overrides = {"operator_console": services.operator_console}
    assert main(["admin", "dead-letters", "--queue", "ingestion"], overrides=overrides) == 0
    listed = capsys.readouterr().out
    assert '"document_id": 21' in listed
    letter_id = services.broker.dead_letters().of("ingestion")[0].letter_id
    assert (
        main(["admin", "--as", "carol", "requeue", "ingestion", letter_id], overrides=overrides)
        == 0
    )
    assert main(["admin", "requeue", "ingestion", letter_id], overrides=overrides) == 1
    assert "no dead letter" in capsys.readouterr().err
    assert main(["admin", "requeue", "nowhere", "--all"], overrides=overrides) == 1
    assert services.broker.dead_letters().of("ingestion") == []
    assert main(["admin", "actions"], overrides=overrides) == 0
    out = capsys.readouterr().out
    assert '"actor": "carol"' in out
    assert main(["admin", "workers"], overrides=overrides) == 0
    assert main(["admin", "stuck"], overrides=overrides) == 0
