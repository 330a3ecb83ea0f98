"""Cancel and history over HTTP against real server processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.conftest import GOOD_TEXT, ServerProcess, ready_workspace, settled_document, upload

pytestmark = pytest.mark.slow


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message: str = response.json()["error"]
    assert message
    return message


@pytest.fixture
def alice(server: ServerProcess, new_user: Callable[[], int]) -> Iterator[httpx.Client]:
    with server.client(new_user()) as client:
        yield client


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
