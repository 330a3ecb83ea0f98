"""UserUsage on SQLAlchemy: a reservation is one conditional update under the row's lock."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import user_usage
from adapters.sql.sessions import transaction
from domain.ports.usage import Usage, UserUsage


class SqlUserUsage(UserUsage):
    """Usage in ``user_usage``, one row per user, created on the first reservation."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def reserve(self, user_id: int, added: Usage, *, limit: Usage) -> Usage | None:
        with transaction(self._sessions) as session:
            insert = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            session.execute(
                insert(user_usage)
                .values(user_id=user_id, documents=0, stored_bytes=0)
                .on_conflict_do_nothing(index_elements=["user_id"])
            )
            # The database judges the sum under the row's lock: concurrent reservations of one
            # user queue up behind each other, and each sees the others' additions.
            row = session.execute(
                update(user_usage)
                .where(
                    user_usage.c.user_id == user_id,
                    user_usage.c.documents + added.documents <= limit.documents,
                    user_usage.c.stored_bytes + added.bytes <= limit.bytes,
                )
                .values(
                    documents=user_usage.c.documents + added.documents,
                    stored_bytes=user_usage.c.stored_bytes + added.bytes,
                )
                .returning(user_usage.c.documents, user_usage.c.stored_bytes)
            ).first()
            if row is None:
                return None
            return Usage(row.documents - added.documents, row.stored_bytes - added.bytes)

    def release(self, user_id: int, taken: Usage) -> None:
        with transaction(self._sessions) as session:
            session.execute(
                update(user_usage)
                .where(user_usage.c.user_id == user_id)
                .values(
                    documents=user_usage.c.documents - taken.documents,
                    stored_bytes=user_usage.c.stored_bytes - taken.bytes,
                )
            )

    def of(self, user_id: int) -> Usage:
        with transaction(self._sessions) as session:
            row = session.execute(
                select(user_usage.c.documents, user_usage.c.stored_bytes).where(
                    user_usage.c.user_id == user_id
                )
            ).first()
            return Usage() if row is None else Usage(row.documents, row.stored_bytes)
