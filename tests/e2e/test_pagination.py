"""HTTP lists in pages: keyset links, a stable order, a status filter, and 400 for bad values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, postgres_server, stored_workspace
from tests.support.processes import private_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_documents_are_listed_in_pages_following_next_links(
    tmp_path: Path, make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    with private_postgres() as database_url:
        server = postgres_server(make_server, database_url, tmp_path)
        user = new_user()
        workspace, ids = stored_workspace(server, database_url, user, 450)
        with server.client(user) as api:
            for document_id in ids[10:20]:
                assert api.post(f"/api/documents/{document_id}/retry").status_code == 202

            first = api.get(f"/api/workspaces/{workspace['id']}/documents").json()
            assert [d["id"] for d in first["documents"]] == ids[:50]
            seen, link = [], f"/api/workspaces/{workspace['id']}/documents?limit=200"
            while link is not None:
                page = api.get(link).json()
                assert len(page["documents"]) <= 200
                seen += [d["id"] for d in page["documents"]]
                link = page["next"]
            assert seen == ids

            pending = api.get(
                f"/api/workspaces/{workspace['id']}/documents", params={"status": "pending"}
            ).json()
            assert [d["id"] for d in pending["documents"]] == ids[10:20]
            assert pending["next"] is None
            workspaces = api.get("/api/workspaces", params={"limit": 1}).json()
            assert [w["id"] for w in workspaces["workspaces"]] == [workspace["id"]]
            assert workspaces["next"] is None


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("after=abc", "after"),
        ("after=" + "9" * 30, "after"),
        ("status=finished", "status"),
        ("page=2", "page"),
    ],
)
def test_a_bad_list_parameter_is_a_400_naming_it(
    idle_server: ServerProcess, new_user: Callable[[], int], query: str, parameter: str
) -> None:
    with idle_server.client(new_user()) as api:
        workspace = api.post("/api/workspaces", json={"name": "W"}).json()
        for path in (f"/api/workspaces/{workspace['id']}/documents", "/api/workspaces"):
            answer = api.get(f"{path}?{query}")
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["field"] == parameter
            assert f"'{parameter}'" in answer.json()["error"]
