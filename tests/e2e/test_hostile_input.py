"""Hostile input, each case refused with a clear error while everyone else carries on.

One deployment (PostgreSQL, RabbitMQ, ``insighthub serve``, a worker and the outbox relay as
real processes) serves the whole module. A bystander user keeps a browser-protocol socket
open throughout; after every case the bystander uploads a document and must see it through
to ``ready`` on that same socket, and every process must still be running.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from adapters.auth.jwt_tokens import JwtIssuer
from adapters.sql.repository import SqlStatusRepository
from application.status_service import StatusService
from domain.errors import PublishFailed
from domain.events import MAX_BODY_BYTES, DocumentStatusUpdated, encode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus
from entrypoints.server.sockets import MAX_SOCKETS_PER_USER
from tests.e2e.conftest import GOOD_TEXT, ServerProcess
from tests.faults.harness import Deployment
from tests.support.raw_messages import publish_raw
from tests.support.ws_client import StatusClient

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@dataclass
class Stage:
    deployment: Deployment
    server: ServerProcess
    bystander: int
    bystander_workspace: int
    bystander_socket: StatusClient
    user: int
    workspace: int
    uploads: int = 0

    def api(self, user: int | None = None) -> httpx.Client:
        return self.server.client(self.user if user is None else user)

    def assert_nothing_else_affected(self) -> None:
        """Every process runs, and the bystander's next upload reaches ``ready`` live."""
        for process in self.deployment.processes:
            assert process.popen.poll() is None, f"{process.name} died:\n{process.log()[-2000:]}"
        assert self.server.process.poll() is None, self.server.log()[-2000:]
        self.uploads += 1
        document_id = self.deployment.upload(
            self.server, self.bystander, self.bystander_workspace, self.uploads
        )
        assert document_id is not None, self.deployment.notes
        key = ("document", document_id)
        reached = self.bystander_socket.wait_until(
            lambda c: c.view.get(key, (0, ""))[1] == "ready", 60
        )
        assert reached, f"bystander saw {self.bystander_socket.view.get(key)}"
        assert self.bystander_socket.shows(self.deployment.db_view(self.bystander))


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    with Deployment("rabbitmq") as deployment:
        server = deployment.server()
        deployment.worker()
        deployment.relay()
        bystander = deployment.new_user()
        bystander_workspace = deployment.ready_workspace(server, bystander)
        bystander_socket = deployment.client(bystander, server)
        user = deployment.new_user()
        workspace = deployment.ready_workspace(server, user)
        yield Stage(
            deployment,
            server,
            bystander,
            bystander_workspace,
            bystander_socket,
            user,
            workspace,
        )


def open_socket(server: ServerProcess, token: str, **options: Any) -> ClientConnection:
    connection: ClientConnection = connect(
        f"ws://127.0.0.1:{server.port}/ws?token={token}", open_timeout=10, **options
    )
    return connection


def closed_with(connection: ClientConnection, timeout: float = 10) -> int | None:
    deadline = time.monotonic() + timeout
    with connection:
        try:
            while time.monotonic() < deadline:
                connection.recv(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionClosed:
            pass
        except TimeoutError:
            return None
    return connection.close_code


def refused_status(server: ServerProcess, token: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server, token, **options).close()
    status: int = refused.value.response.status_code
    return status


# -- broker bodies ---------------------------------------------------------------------------

HOSTILE_BODIES = {
    "not_json": b"\x00\xffnot json at all",
    "wrong_schema": json.dumps(
        {
            "schema": 1,
            "routing_key": "document.uploaded",
            "event_id": "e",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "message": {"document_id": "seven", "user_id": None},
        }
    ).encode(),
    "huge": b'{"schema": 1, "pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}',
    # Once a RecursionError no consumer caught: the worker died instead of dead-lettering.
    "deeply_nested": b"[" * 100_000,
    "implausible_version": json.dumps(
        {
            "schema": 1,
            "routing_key": "document.uploaded",
            "event_id": "e",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "message": {
                "document_id": 1,
                "user_id": 1,
                "workspace_id": 1,
                "file_path": "f",
                "version": 10**18,
            },
        }
    ).encode(),
    "five_thousand_digits": b'{"schema": 1, "routing_key": "document.uploaded", "n": '
    + b"7" * 5000
    + b"}",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_a_hostile_work_body_is_dead_lettered_with_its_reason(stage: Stage, kind: str) -> None:
    broker: Any = stage.deployment.container.broker()
    before = len(broker.dead_letters().of("ingestion"))
    publish_raw(broker, "document.uploaded", HOSTILE_BODIES[kind])
    deadline = time.monotonic() + 30
    while len(broker.dead_letters().of("ingestion")) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    letters = broker.dead_letters().of("ingestion")
    assert len(letters) == before + 1
    reason = letters[-1].reason.lower()
    assert any(word in reason for word in ("json", "field", "exceeds", "schema", "nests")), reason
    stage.assert_nothing_else_affected()


@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_a_hostile_status_body_is_dropped_and_logged(stage: Stage, kind: str) -> None:
    broker: Any = stage.deployment.container.broker()
    publish_raw(broker, "document.status.updated", HOSTILE_BODIES[kind])
    deadline = time.monotonic() + 20
    while "malformed status message" not in stage.server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "malformed status message" in stage.server.log()
    stage.assert_nothing_else_affected()


def test_an_unknown_routing_key_reaches_no_one_and_harms_nothing(stage: Stage) -> None:
    broker: Any = stage.deployment.container.broker()
    body = json.dumps({"schema": 1, "routing_key": "document.exploded"}).encode()
    # Work nobody consumes is refused to its producer, with the key named.
    with pytest.raises(PublishFailed, match=r"document\.exploded"):
        publish_raw(broker, "document.exploded", body)
    # The broadcast binding takes any "*.status.updated"; the server drops what it cannot use.
    publish_raw(broker, "secret.status.updated", body)
    deadline = time.monotonic() + 20
    while "unknown routing key" not in stage.server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "unknown routing key" in stage.server.log()
    stage.assert_nothing_else_affected()


# -- request values ----------------------------------------------------------------------------


def assert_json_error(answer: httpx.Response, status: int, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()
    assert isinstance(error["error"], str)
    assert error["code"]
    if field is not None:
        assert error["field"] == field


def test_a_five_thousand_digit_id_is_not_found(stage: Stage) -> None:
    with stage.api() as api:
        for path in ("/api/documents/{}", "/api/workspaces/{}/documents", "/api/workspaces/{}"):
            assert_json_error(api.get(path.format("9" * 5000)), 404)
        assert_json_error(api.post(f"/api/documents/{'9' * 5000}/retry"), 404)
    stage.assert_nothing_else_affected()


@pytest.mark.parametrize("name", ["\\ud800", "a\\udfffb", "nul\\u0000"])
def test_a_workspace_name_that_is_not_text_is_refused_naming_it(stage: Stage, name: str) -> None:
    before = stage.deployment.db_view(stage.user)
    with stage.api() as api:
        answer = api.post(
            "/api/workspaces",
            content=b'{"name": "' + name.encode() + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert_json_error(answer, 422, "name")
    assert stage.deployment.db_view(stage.user) == before
    stage.assert_nothing_else_affected()


def test_a_deeply_nested_json_body_is_a_bad_request(stage: Stage) -> None:
    with stage.api() as api:
        answer = api.post("/api/workspaces", content=b"[" * 60_000)
    assert_json_error(answer, 400)
    stage.assert_nothing_else_affected()


def test_a_non_ascii_bearer_token_is_unauthorized(stage: Stage) -> None:
    for token in ("é".encode(), "v1.тест.подпись".encode(), b"\xff\xfe"):
        answer = httpx.get(
            f"{stage.server.base_url}/api/workspaces",
            headers={b"Authorization": b"Bearer " + token},
        )
        assert_json_error(answer, 401)
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    stage.assert_nothing_else_affected()


# -- WebSocket frames --------------------------------------------------------------------------


def test_garbage_text_closes_only_that_socket_as_unsupported(stage: Stage) -> None:
    with open_socket(stage.server, stage.server.token(stage.user)) as socket_:
        socket_.recv(timeout=10)  # the snapshot
        socket_.send("{{{ definitely not json")
        assert closed_with(socket_) == 1003
    stage.assert_nothing_else_affected()


def test_a_binary_frame_closes_only_that_socket_as_unsupported(stage: Stage) -> None:
    with open_socket(stage.server, stage.server.token(stage.user)) as socket_:
        socket_.recv(timeout=10)
        socket_.send(b"\x00\x01\x02 binary")
        assert closed_with(socket_) == 1003
    stage.assert_nothing_else_affected()


def test_an_oversize_frame_closes_only_that_socket_as_too_big(stage: Stage) -> None:
    with open_socket(stage.server, stage.server.token(stage.user)) as socket_:
        socket_.recv(timeout=10)
        socket_.send(json.dumps({"type": "resync", "pad": "x" * 20_000}))
        assert closed_with(socket_) == 1009
    stage.assert_nothing_else_affected()


def test_a_frame_over_the_protocol_limit_is_refused_by_the_server(stage: Stage) -> None:
    with open_socket(stage.server, stage.server.token(stage.user), max_size=None) as socket_:
        socket_.recv(timeout=10)
        socket_.send("x" * (200 * 1024))
        assert closed_with(socket_) == 1009
    stage.assert_nothing_else_affected()


def test_a_connection_flood_from_one_user_leaves_others_served(stage: Stage) -> None:
    flooder = stage.deployment.new_user()
    token = stage.server.token(flooder)
    opened: list[ClientConnection] = []
    refused = 0
    with contextlib.ExitStack() as sockets:
        for _ in range(300):
            try:
                opened.append(sockets.enter_context(open_socket(stage.server, token)))
            except (InvalidStatus, OSError, TimeoutError):
                refused += 1
        stage.assert_nothing_else_affected()
    assert len(opened) + refused == 300
    assert len(opened) == MAX_SOCKETS_PER_USER, "the flood was not capped per user"
    # What the flood did is visible: no socket outlives its close, none is counted twice.
    deadline = time.monotonic() + 20
    while stage.server.metric("websocket_connections") > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stage.server.metric("websocket_connections") == 1


def test_a_client_that_never_reads_is_closed_and_stalls_no_one(stage: Stage) -> None:
    reader_less = stage.deployment.new_user()
    raw = socket.create_connection(("127.0.0.1", stage.server.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    stalled = connect(
        f"ws://127.0.0.1:{stage.server.port}/ws?token={stage.server.token(reader_less)}",
        sock=raw,
        max_queue=1,
        compression=None,
        open_timeout=10,
    )
    publisher = stage.deployment.container.publisher()
    padding = {"note": "x" * 16_000}
    before = stage.server.metric("websocket_slow_clients_closed_total")
    try:
        for version in range(2, 2000):
            publisher.publish(
                DocumentStatusUpdated(
                    document_id=10**9,
                    user_id=reader_less,
                    workspace_id=1,
                    filename="flood.txt",
                    status=DocumentProcessingStatus.PROCESSING,
                    error=None,
                    chunk_count=0,
                    metadata=padding,
                    progress=Progress(),
                    version=version,
                )
            )
            if (
                version % 100 == 0
                and stage.server.metric("websocket_slow_clients_closed_total") > before
            ):
                break
        deadline = time.monotonic() + 20
        while (
            stage.server.metric("websocket_slow_clients_closed_total") == before
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert stage.server.metric("websocket_slow_clients_closed_total") == before + 1
        stage.assert_nothing_else_affected()
    finally:
        stalled.close_socket()
        raw.close()


# -- tokens and origins --------------------------------------------------------------------------


def test_an_expired_token_is_refused_on_the_api_and_the_socket(stage: Stage) -> None:
    expired = JwtIssuer(stage.server.secret).issue(stage.user, 1)
    time.sleep(2.1)
    answer = httpx.get(
        f"{stage.server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {expired}"}
    )
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert refused_status(stage.server, expired) in (401, 403)
    stage.assert_nothing_else_affected()


def test_a_forged_token_is_refused_on_the_api_and_the_socket(stage: Stage) -> None:
    forged = JwtIssuer(secrets.token_urlsafe(32)).issue(stage.bystander, 3600)
    answer = httpx.get(
        f"{stage.server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {forged}"}
    )
    assert answer.status_code == 401
    assert refused_status(stage.server, forged) in (401, 403)
    stage.assert_nothing_else_affected()


def test_a_missing_token_is_refused_on_the_api_and_the_socket(stage: Stage) -> None:
    answer = httpx.get(f"{stage.server.base_url}/api/workspaces")
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert refused_status(stage.server, "") in (401, 403)
    stage.assert_nothing_else_affected()


def test_another_users_token_finds_nothing_of_the_bystander(stage: Stage) -> None:
    with stage.api() as intruder:
        for path in (
            f"/api/workspaces/{stage.bystander_workspace}",
            f"/api/workspaces/{stage.bystander_workspace}/documents",
        ):
            answer = intruder.get(path)
            assert answer.status_code == 404, path
            assert "error" in answer.json()
        retry = intruder.post(f"/api/workspaces/{stage.bystander_workspace}/retry")
        assert retry.status_code == 404
        upload = intruder.post(
            f"/api/workspaces/{stage.bystander_workspace}/documents",
            files={"file": ("a.txt", GOOD_TEXT, "text/plain")},
        )
        assert upload.status_code == 404
    stage.assert_nothing_else_affected()


def test_a_foreign_origin_is_refused_at_the_handshake(stage: Stage) -> None:
    status = refused_status(
        stage.server,
        stage.server.token(stage.user),
        additional_headers={"Origin": "https://evil.example"},
    )
    assert status == 403
    stage.assert_nothing_else_affected()


# -- uploads -------------------------------------------------------------------------------------


def test_an_oversize_upload_is_refused_and_stores_nothing(stage: Stage) -> None:
    before = stage.deployment.db_view(stage.user)
    with stage.api() as api:
        answer = api.post(
            f"/api/workspaces/{stage.workspace}/documents",
            files={"file": ("big.txt", b"x" * (2 * 1024 * 1024), "text/plain")},
        )
    assert answer.status_code == 413
    assert "limit" in answer.json()["error"]
    assert stage.deployment.db_view(stage.user) == before
    stage.assert_nothing_else_affected()


def test_an_upload_of_a_wrong_type_is_refused(stage: Stage) -> None:
    before = stage.deployment.db_view(stage.user)
    with stage.api() as api:
        answer = api.post(
            f"/api/workspaces/{stage.workspace}/documents",
            files={"file": ("payload.exe", b"MZ\x90\x00binary", "application/octet-stream")},
        )
    assert answer.status_code == 415
    assert "error" in answer.json()
    assert stage.deployment.db_view(stage.user) == before
    stage.assert_nothing_else_affected()


@pytest.mark.parametrize(
    "name", ["../../../../etc/cron.d/evil.txt", "..\\..\\windows\\evil.txt", "/abs/evil.txt"]
)
def test_a_path_traversal_file_name_never_leaves_storage(stage: Stage, name: str) -> None:
    storage = stage.deployment.workdir / "files"
    with stage.api() as api:
        answer = api.post(
            f"/api/workspaces/{stage.workspace}/documents",
            files={"file": (name, GOOD_TEXT, "text/plain")},
        )
    assert answer.status_code in (202, 422), answer.text
    if answer.status_code == 202:
        stored = answer.json()["filename"]
        assert "/" not in stored
        assert "\\" not in stored
        assert ".." not in stored
    outside = [
        path for path in stage.deployment.workdir.rglob("*evil*") if storage not in path.parents
    ]
    assert outside == []
    stage.assert_nothing_else_affected()


# -- illegal transitions ---------------------------------------------------------------------------


def test_illegal_transitions_through_the_api_are_conflicts(stage: Stage) -> None:
    with stage.api() as api:
        document_id = stage.deployment.upload(stage.server, stage.user, stage.workspace, 99)
        assert document_id is not None
        stage.deployment.wait_for(
            lambda: stage.deployment.db_status("document", document_id) == "ready", 60, "ready"
        )
        before = stage.deployment.db_view(stage.user)
        document_retry = api.post(f"/api/documents/{document_id}/retry")
        workspace_retry = api.post(f"/api/workspaces/{stage.workspace}/retry")
    assert document_retry.status_code == 409
    assert "failed" in document_retry.json()["error"]
    assert workspace_retry.status_code == 409
    assert stage.deployment.db_view(stage.user) == before
    stage.assert_nothing_else_affected()


def test_illegal_transitions_through_the_service_are_errors_that_change_nothing(
    stage: Stage,
) -> None:
    database = stage.deployment.database
    service = StatusService(SqlStatusRepository(database.session_factory, outbox=True), None)
    document_id = stage.deployment.upload(stage.server, stage.user, stage.workspace, 98)
    assert document_id is not None
    stage.deployment.wait_for(
        lambda: stage.deployment.db_status("document", document_id) == "ready", 60, "ready"
    )
    before = stage.deployment.db_view(stage.user)
    unsent = stage.deployment.unsent()
    backwards = service.update_document_status(document_id, "processing")
    unknown = service.update_document_status(document_id, "exploded")
    workspace_back = service.update_workspace_status(stage.workspace, "provisioning")
    missing = service.update_document_status(2**31 - 1, "ready")
    assert backwards.is_err()
    assert "ready" in backwards.error
    assert unknown.is_err()
    assert "unknown" in unknown.error
    assert workspace_back.is_err()
    assert missing.is_err()
    assert "not found" in missing.error
    assert stage.deployment.db_view(stage.user) == before
    assert stage.deployment.unsent() == unsent  # no event was recorded for a refused change
    stage.assert_nothing_else_affected()


def test_status_event_encoding_is_what_the_server_accepts(stage: Stage) -> None:
    # The flood and injection cases above rely on events the server takes as real ones.
    event = DocumentStatusUpdated(
        document_id=1,
        user_id=1,
        workspace_id=1,
        filename="f",
        status=DocumentProcessingStatus.READY,
        error=None,
        chunk_count=0,
        metadata={},
        progress=Progress(),
        version=1,
    )
    assert json.loads(encode(event))["routing_key"] == "document.status.updated"
