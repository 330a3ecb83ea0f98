"""The PostgreSQL pool checks a connection that sat idle, and only such a one, before use."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from adapters.sql import database as database_module
from tests.integration.conftest import migrated_postgres

pytestmark = pytest.mark.postgres


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine: Engine, pid: int) -> None:
    # A second engine, so that the pooled connection itself is not the one that is used.
    killer = create_engine(engine.url)
    try:
        with killer.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
    finally:
        killer.dispose()


def test_an_idle_connection_whose_server_side_died_is_replaced_before_use() -> None:
    with migrated_postgres() as database:
        first = _backend_pid(database.engine)
        _terminate(database.engine, first)
        time.sleep(database_module.PING_AFTER_IDLE_SECONDS + 0.1)
        assert _backend_pid(database.engine) != first


def test_a_connection_handed_back_a_moment_ago_is_used_without_a_ping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with migrated_postgres() as database:
        first = _backend_pid(database.engine)
        _terminate(database.engine, first)
        # Not pinged, so the dead connection fails this call; the pool then replaces it.
        with pytest.raises(OperationalError):
            _backend_pid(database.engine)
        assert _backend_pid(database.engine) != first


def test_a_status_change_on_a_lost_connection_fails_as_sqlalchemy_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adapters.sql.repository import SqlStatusRepository
    from domain.changes import WorkspaceStatusChange
    from domain.status import WorkspaceStatus

    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with migrated_postgres() as database:
        repository = SqlStatusRepository(database.session_factory)
        workspace = repository.add_workspace(user_id=1, name="w")
        _terminate(database.engine, _backend_pid(database.engine))
        change = WorkspaceStatusChange(workspace_id=workspace.id, status=WorkspaceStatus.READY)
        # The server maps SQLAlchemy's OperationalError to 503; the dead connection is dropped.
        with pytest.raises(OperationalError) as raised:
            repository.update_workspace_status(change)
        assert raised.value.connection_invalidated
        assert repository.update_workspace_status(change).unwrap().version == 2
