"""An unreachable database is a 503 with a JSON error, never a 500."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from adapters.auth.jwt_tokens import JwtIssuer
from adapters.bootstrap import bootstrap
from adapters.memory.repository import InMemoryStatusRepository
from domain.entities import Workspace
from entrypoints.server import create_app


class UnreachableDatabase(InMemoryStatusRepository):
    """Answers every read as a database whose server is down would."""

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        raise OperationalError("SELECT …", {}, ConnectionRefusedError("connection refused"))


def test_reads_while_the_database_is_down_are_503_and_say_why() -> None:
    services = bootstrap(
        {"DATABASE_URL": "memory://", "TRANSPORT": "memory"},
        overrides={"repository": UnreachableDatabase()},
    )
    token = JwtIssuer(services.settings.secret_key).issue(1)
    try:
        services.start()
        app = create_app(services)
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
        services.close()
