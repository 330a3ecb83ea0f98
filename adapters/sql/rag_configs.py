"""RagConfigs on SQLAlchemy: ``rag_configs`` per workspace, ``default_rag_configs`` per user."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import (
    default_rag_configs,
    rag_config_values,
    rag_configs,
    to_rag_config,
)
from adapters.sql.repository import ensure_user
from adapters.sql.sessions import transaction
from domain.entities import RagConfig
from domain.ports import RagConfigs


class SqlRagConfigs(RagConfigs):
    """Processing settings in SQL; a save replaces the previous settings in one statement."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def defaults_for(self, user_id: int) -> RagConfig | None:
        return self._read(default_rag_configs, "user_id", user_id)

    def set_defaults(self, user_id: int, config: RagConfig) -> None:
        now = datetime.now(UTC)
        with transaction(self._sessions) as session:
            ensure_user(session, user_id, now)
            _upsert(session, default_rag_configs, "user_id", user_id, config=config, now=now)

    def for_workspace(self, workspace_id: int) -> RagConfig | None:
        return self._read(rag_configs, "workspace_id", workspace_id)

    def save_for_workspace(self, workspace_id: int, config: RagConfig) -> None:
        now = datetime.now(UTC)
        with transaction(self._sessions) as session:
            _upsert(session, rag_configs, "workspace_id", workspace_id, config=config, now=now)

    def _read(self, table: Table, owner: str, owner_id: int) -> RagConfig | None:
        with transaction(self._sessions) as session:
            row = session.execute(select(table).where(table.c[owner] == owner_id)).first()
        return None if row is None else to_rag_config(row._mapping)


def _upsert(
    session: Session,
    table: Table,
    owner: str,
    owner_id: int,
    *,
    config: RagConfig,
    now: datetime,
) -> None:
    # INSERT … ON CONFLICT DO UPDATE: two concurrent first saves cannot both insert.
    values = rag_config_values(config)
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = upsert(table).values(
        {owner: owner_id, **values, "created_at": now, "updated_at": now}
    )
    session.execute(
        statement.on_conflict_do_update(index_elements=[owner], set_={**values, "updated_at": now})
    )
