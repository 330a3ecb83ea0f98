"""An unreachable database is a 503 with a JSON error, never a 500."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from adapters.container import build_container, close_container
from adapters.memory.repository import InMemoryStatusRepository
from application.tokens import TokenSigner
from domain.entities import Workspace
from entrypoints.server import create_app


class UnreachableDatabase(InMemoryStatusRepository):
    """Answers every read as a database whose server is down would."""

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        raise OperationalError("SELECT …", {}, ConnectionRefusedError("connection refused"))


def test_reads_while_the_database_is_down_are_503_and_say_why() -> None:
    container, settings = build_container({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    container.repository.override(UnreachableDatabase())
    token = TokenSigner(settings.secret_key).issue(1)
    try:
        app = create_app(container, settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/api/workspaces", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            assert response.json() == {
                "error": "the database is unavailable; try again shortly",
                "code": "unavailable",
            }
            assert client.get("/healthz").status_code == 200
    finally:
        close_container(container)
