"""The HTTP API against a real server process: every route and every error code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from adapters.auth.jwt_tokens import JwtIssuer
from tests.e2e.conftest import (
    BROKEN_PDF,
    GOOD_TEXT,
    TEST_UPLOAD_LIMIT,
    ServerProcess,
    ready_workspace,
    settled_document,
    upload,
    wait_for,
)

pytestmark = pytest.mark.slow

ROUTES = [
    ("GET", "/api/session"),
    ("POST", "/api/workspaces"),
    ("GET", "/api/workspaces"),
    ("GET", "/api/workspaces/1"),
    ("POST", "/api/workspaces/1/retry"),
    ("POST", "/api/workspaces/1/documents"),
    ("GET", "/api/workspaces/1/documents"),
    ("GET", "/api/documents/1"),
    ("POST", "/api/documents/1/retry"),
    ("POST", "/api/workspaces/1/cancel"),
    ("GET", "/api/workspaces/1/history"),
    ("POST", "/api/documents/1/cancel"),
    ("GET", "/api/documents/1/history"),
]


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert isinstance(message, str)
    assert message
    return message


@pytest.fixture
def alice(server: ServerProcess, new_user: Callable[[], int]) -> Iterator[httpx.Client]:
    with server.client(new_user()) as client:
        yield client


@pytest.fixture
def bob(server: ServerProcess, new_user: Callable[[], int]) -> Iterator[httpx.Client]:
    with server.client(new_user()) as client:
        yield client


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_api_route_refuses_a_request_without_a_token(
    server: ServerProcess, method: str, path: str
) -> None:
    with server.client() as anonymous:
        response = anonymous.request(method, path)
    assert _error(response, 401) == "missing bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-token", "Bearer v1.e30.AAAA", "token abc"],
)
def test_a_malformed_authorization_header_is_refused(
    server: ServerProcess, authorization: str
) -> None:
    response = httpx.get(
        f"{server.base_url}/api/workspaces", headers={"Authorization": authorization}
    )
    _error(response, 401)


def test_a_token_signed_with_another_key_is_refused(server: ServerProcess) -> None:
    forged = JwtIssuer("a-different-secret-key-entirely").issue(42)
    response = httpx.get(
        f"{server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {forged}"}
    )
    assert _error(response, 401) == "invalid token signature"


def test_a_token_whose_user_was_changed_is_refused(server: ServerProcess) -> None:
    genuine = server.token(41)
    other = server.token(42)
    prefix, _, signature = genuine.split(".")
    _, payload_of_42, _ = other.split(".")
    tampered = f"{prefix}.{payload_of_42}.{signature}"
    response = httpx.get(
        f"{server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert _error(response, 401) == "invalid token signature"


def test_an_expired_token_is_refused(server: ServerProcess) -> None:
    an_hour_ago = time.time() - 3600
    expired = JwtIssuer(server.secret, clock=lambda: an_hour_ago).issue(42, ttl_seconds=60)
    response = httpx.get(
        f"{server.base_url}/api/workspaces", headers={"Authorization": f"Bearer {expired}"}
    )
    assert _error(response, 401) == "token expired"


def test_the_session_names_the_tokens_user(server: ServerProcess) -> None:
    with server.client(77) as client:
        body = client.get("/api/session").json()
    assert body["user_id"] == 77
    assert body["expires_at"] > time.time()


# --- workspaces ------------------------------------------------------------------------------


def test_a_created_workspace_is_provisioning_then_ready(alice: httpx.Client) -> None:
    created = alice.post("/api/workspaces", json={"name": "  Quarterly reports "})
    assert created.status_code == 202
    body = created.json()
    assert body["name"] == "Quarterly reports"
    assert body["status"] == "provisioning"
    assert body["status_message"] is None
    assert body["version"] == 1
    assert {"id", "created_at", "updated_at"} <= body.keys()

    ready = ready_workspace(alice, "Second")
    assert ready["version"] == 2
    listed = alice.get("/api/workspaces").json()["workspaces"]
    assert [w["name"] for w in listed] == ["Quarterly reports", "Second"]
    assert alice.get(f"/api/workspaces/{body['id']}").json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"", 400),
        (b"[1, 2]", 422),
        (b'"a name"', 422),
        (b"{}", 422),
        (b'{"name": 5}', 422),
        (b'{"name": "   "}', 422),
        (b'{"name": "' + b"x" * 201 + b'"}', 422),
    ],
)
def test_a_bad_workspace_body_is_a_client_error(
    alice: httpx.Client, body: bytes, status: int
) -> None:
    response = alice.post(
        "/api/workspaces", content=body, headers={"Content-Type": "application/json"}
    )
    _error(response, status)
    assert alice.get("/api/workspaces").json()["workspaces"] == []


def test_an_oversized_json_body_is_refused(alice: httpx.Client) -> None:
    body = b'{"name": "' + b"x" * 100_000 + b'"}'
    _error(alice.post("/api/workspaces", content=body), 413)


def test_retrying_a_ready_workspace_is_a_conflict(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    assert "only a workspace in error" in _error(
        alice.post(f"/api/workspaces/{workspace['id']}/retry"), 409
    )


def test_another_users_workspace_does_not_exist_for_them(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    workspace = ready_workspace(alice)
    document = upload(alice, workspace["id"], "notes.txt", GOOD_TEXT).json()
    wid, did = workspace["id"], document["id"]
    _error(bob.get(f"/api/workspaces/{wid}"), 404)
    _error(bob.post(f"/api/workspaces/{wid}/retry"), 404)
    _error(bob.get(f"/api/workspaces/{wid}/documents"), 404)
    _error(upload(bob, wid, "mine.txt", GOOD_TEXT), 404)
    _error(bob.get(f"/api/documents/{did}"), 404)
    _error(bob.post(f"/api/documents/{did}/retry"), 404)
    assert bob.get("/api/workspaces").json()["workspaces"] == []
    assert [d["id"] for d in alice.get(f"/api/workspaces/{wid}/documents").json()["documents"]] == [
        did
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/api/workspaces/999999999",
        "/api/workspaces/99999999999999999999999999",
        "/api/documents/999999999",
        "/api/workspaces/abc",
        "/api/nowhere",
    ],
)
def test_an_unknown_resource_is_a_json_404(alice: httpx.Client, path: str) -> None:
    _error(alice.get(path), 404)


def test_a_wrong_method_is_a_json_405(alice: httpx.Client) -> None:
    _error(alice.delete("/api/workspaces"), 405)


# --- documents -------------------------------------------------------------------------------


def test_an_uploaded_document_is_pending_then_ready(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    response = upload(alice, workspace["id"], "notes.md", GOOD_TEXT)
    assert response.status_code == 202, response.text
    document = response.json()
    assert document["processing_status"] == "pending"
    assert document["processing_error"] is None
    assert document["filename"] == "notes.md"
    assert document["workspace_id"] == workspace["id"]
    assert document["chunk_count"] == 0
    assert document["version"] == 1
    assert document["progress"]
    assert all(step["completed"] is False for step in document["progress"])
    assert {"metadata", "created_at", "updated_at"} <= document.keys()

    done = settled_document(alice, document["id"])
    assert done["processing_status"] == "ready"
    assert done["chunk_count"] > 0
    assert all(step["completed"] for step in done["progress"])
    assert done["version"] > document["version"]
    listed = alice.get(f"/api/workspaces/{workspace['id']}/documents").json()["documents"]
    assert [d["id"] for d in listed] == [document["id"]]


def test_a_broken_file_fails_with_its_error_and_can_be_retried(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    document = upload(alice, workspace["id"], "scan.pdf", BROKEN_PDF).json()
    failed = settled_document(alice, document["id"])
    assert failed["processing_status"] == "failed"
    assert failed["processing_error"]

    retried = alice.post(f"/api/documents/{document['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["processing_status"] == "pending"
    assert retried.json()["version"] > failed["version"]
    again = wait_for(
        lambda: (
            (body := alice.get(f"/api/documents/{document['id']}").json())["processing_status"]
            == "failed"
            and body["version"] > retried.json()["version"]
            and body
        )
    )
    assert again["processing_error"]


def test_retrying_a_document_that_has_not_failed_is_a_conflict(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    document = upload(alice, workspace["id"], "notes.txt", GOOD_TEXT).json()
    settled_document(alice, document["id"])
    assert "only a failed document" in _error(
        alice.post(f"/api/documents/{document['id']}/retry"), 409
    )


def test_uploading_into_a_workspace_still_provisioning_is_a_conflict(
    idle_server: ServerProcess, new_user: Callable[[], int]
) -> None:
    with idle_server.client(new_user()) as client:
        workspace = client.post("/api/workspaces", json={"name": "Waiting"}).json()
        assert workspace["status"] == "provisioning"
        assert "not ready" in _error(upload(client, workspace["id"], "a.txt", GOOD_TEXT), 409)
        assert client.get(f"/api/workspaces/{workspace['id']}/documents").json() == {
            "documents": [],
            "next": None,
        }


def test_an_unsupported_file_type_is_refused(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    assert "unsupported file type" in _error(
        upload(alice, workspace["id"], "program.exe", b"MZ\x90\x00"), 415
    )
    assert alice.get(f"/api/workspaces/{workspace['id']}/documents").json()["documents"] == []


def test_a_body_that_is_not_multipart_is_refused(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    response = alice.post(
        f"/api/workspaces/{workspace['id']}/documents",
        content=b"just bytes",
        headers={"Content-Type": "text/plain"},
    )
    _error(response, 415)


def test_a_multipart_body_without_a_file_field_is_unprocessable(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    response = alice.post(
        f"/api/workspaces/{workspace['id']}/documents", files={"other": ("a.txt", b"x")}
    )
    assert "'file'" in _error(response, 422)


def test_a_file_without_a_usable_name_is_unprocessable(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    _error(upload(alice, workspace["id"], "..", GOOD_TEXT), 422)


def test_a_truncated_multipart_body_is_a_bad_request(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        b"partial content with no closing boundary"
    )
    response = alice.post(
        f"/api/workspaces/{workspace['id']}/documents",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    _error(response, 400)
    assert alice.get(f"/api/workspaces/{workspace['id']}/documents").json()["documents"] == []


def test_an_upload_declared_over_the_limit_is_refused(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    too_big = b"a" * (TEST_UPLOAD_LIMIT + 128 * 1024)
    assert "upload limit" in _error(upload(alice, workspace["id"], "big.txt", too_big), 413)
    assert alice.get(f"/api/workspaces/{workspace['id']}/documents").json()["documents"] == []


def test_a_streamed_upload_over_the_limit_is_refused_while_streaming(
    alice: httpx.Client,
) -> None:
    workspace = ready_workspace(alice)
    sent = 0

    def body() -> Iterator[bytes]:
        # No Content-Length: the server can only count as the bytes arrive.
        nonlocal sent
        yield b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(64):
            sent += 16 * 1024
            yield b"a" * (16 * 1024)
        yield b"\r\n--XyZ--\r\n"

    response = alice.post(
        f"/api/workspaces/{workspace['id']}/documents",
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert "upload limit" in _error(response, 413)
    assert sent > TEST_UPLOAD_LIMIT
    assert alice.get(f"/api/workspaces/{workspace['id']}/documents").json()["documents"] == []


def test_an_upload_just_under_the_limit_is_accepted(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    content = (GOOD_TEXT * (TEST_UPLOAD_LIMIT // len(GOOD_TEXT) + 1))[: TEST_UPLOAD_LIMIT - 1]
    response = upload(alice, workspace["id"], "large.txt", content)
    assert response.status_code == 202, response.text


# --- operations ------------------------------------------------------------------------------


def test_health_readiness_and_metrics_answer(server: ServerProcess) -> None:
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "subscription": "alive"}
    metrics = httpx.get(f"{server.base_url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in (
        "websocket_connections",
        "status_events_received_total",
        "status_events_delivered_total",
        "status_events_stale_total",
        "status_events_lost_total",
        "status_push_lag_seconds_count",
    ):
        assert f"\n{name} " in metrics.text
    assert 'status_push_lag_seconds_bucket{le="+Inf"}' in metrics.text


def test_the_page_and_its_modules_are_served(server: ServerProcess) -> None:
    page = httpx.get(f"{server.base_url}/")
    assert page.status_code == 200
    assert "InsightHub" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "status-client.js", "styles.css"):
        assert httpx.get(f"{server.base_url}/static/{asset}").status_code == 200
    _error(httpx.get(f"{server.base_url}/static/missing.js"), 404)


# --- cancel and history ----------------------------------------------------------------------


@pytest.fixture
def idle_alice(idle_server: ServerProcess, new_user: Callable[[], int]) -> Iterator[httpx.Client]:
    """A user of the server whose work is never done: documents stay pending."""
    with idle_server.client(new_user()) as client:
        yield client


def test_a_provisioning_workspace_is_cancelled_and_stays_so(
    idle_alice: httpx.Client, idle_server: ServerProcess
) -> None:
    workspace = idle_alice.post("/api/workspaces", json={"name": "w"}).json()
    # Nothing provisions on this server: cancel the provisioning workspace, then see it stay.
    cancelled_workspace = idle_alice.post(f"/api/workspaces/{workspace['id']}/cancel")
    assert cancelled_workspace.status_code == 200, cancelled_workspace.text
    assert cancelled_workspace.json()["status"] == "error"
    assert cancelled_workspace.json()["status_message"] == "cancelled by user"
    assert "provisioning" in _error(
        idle_alice.post(f"/api/workspaces/{workspace['id']}/cancel"), 409
    )
    history = idle_alice.get(f"/api/workspaces/{workspace['id']}/history").json()
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in history["history"]] == [
        (None, "provisioning", None),
        ("provisioning", "error", "user"),
    ]
    assert history["next"] is None


def test_cancel_of_a_finished_document_is_a_conflict_and_a_strangers_is_not_found(
    alice: httpx.Client, server: ServerProcess, new_user: Callable[[], int]
) -> None:
    workspace = ready_workspace(alice)
    document = upload(alice, workspace["id"], "notes.txt", GOOD_TEXT).json()
    done = settled_document(alice, document["id"])
    assert "only a pending or processing document" in _error(
        alice.post(f"/api/documents/{document['id']}/cancel"), 409
    )
    assert alice.get(f"/api/documents/{document['id']}").json() == done
    with server.client(new_user()) as bob:
        _error(bob.post(f"/api/documents/{document['id']}/cancel"), 404)
        _error(bob.get(f"/api/documents/{document['id']}/history"), 404)
        _error(bob.post(f"/api/workspaces/{workspace['id']}/cancel"), 404)
        _error(bob.get(f"/api/workspaces/{workspace['id']}/history"), 404)
    _error(alice.post("/api/documents/999999999/cancel"), 404)


def test_a_documents_history_is_every_change_paged(alice: httpx.Client) -> None:
    workspace = ready_workspace(alice)
    document = upload(alice, workspace["id"], "notes.txt", GOOD_TEXT).json()
    done = settled_document(alice, document["id"])
    path = f"/api/documents/{document['id']}/history"
    whole = alice.get(path, params={"limit": "200"}).json()
    entries = whole["history"]
    assert [e["version"] for e in entries] == list(range(1, done["version"] + 1))
    assert entries[0]["from_status"] is None
    assert [e["from_status"] for e in entries[1:]] == [e["to_status"] for e in entries[:-1]]
    assert entries[-1]["to_status"] == "ready"
    worker_changes = [e for e in entries if e["to_status"] in ("processing", "ready")]
    assert all(e["actor"] for e in worker_changes)
    assert {e["step"] for e in worker_changes} >= {"Parsing", "Chunking text"}
    assert entries[-1]["step_seconds"] is not None

    paged, next_page = [], f"{path}?limit=2"
    while next_page:
        page = alice.get(next_page).json()
        assert len(page["history"]) <= 2
        paged += page["history"]
        next_page = page["next"]
    assert paged == entries
    assert "status" in _error(alice.get(path, params={"status": "ready"}), 400)
    assert "limit" in _error(alice.get(path, params={"limit": "0"}), 400)
