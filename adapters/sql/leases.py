"""DocumentLeases on SQLAlchemy, judged by the database's clock."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Float, and_, delete, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import document_leases, documents
from adapters.sql.sessions import transaction
from domain.ports import DocumentLeases


def database_now(session: Session) -> ColumnElement[float]:
    """Seconds since the epoch on the database server's clock, shared by every worker."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp()).cast(Float)
    return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)


class SqlDocumentLeases(DocumentLeases):
    """Leases in ``document_leases``; taking one is a single conditional upsert."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def acquire(self, document_id: int, owner: str, seconds: float) -> bool:
        with transaction(self._sessions) as session:
            now = database_now(session)
            upsert = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            statement = upsert(document_leases).values(
                document_id=document_id, owner=owner, expires_at=now + literal(seconds)
            )
            # Insert, or take over the row only if it is ours or has run out; the database
            # decides under its row lock, so two workers can never both hold the lease.
            claimed = statement.on_conflict_do_update(
                index_elements=["document_id"],
                set_={
                    "owner": statement.excluded.owner,
                    "expires_at": statement.excluded.expires_at,
                },
                where=or_(document_leases.c.owner == owner, document_leases.c.expires_at <= now),
            ).returning(document_leases.c.document_id)
            return session.execute(claimed).first() is not None

    def release(self, document_id: int, owner: str) -> None:
        with transaction(self._sessions) as session:
            session.execute(
                delete(document_leases).where(
                    and_(
                        document_leases.c.document_id == document_id,
                        document_leases.c.owner == owner,
                    )
                )
            )

    def expired(self, limit: int = 100) -> list[int]:
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(document_leases.c.document_id)
                .join(documents, documents.c.id == document_leases.c.document_id)
                .where(
                    document_leases.c.expires_at <= database_now(session),
                    documents.c.processing_status.in_(
                        [s.value for s in DocumentLeases.RECOVERABLE]
                    ),
                )
                .order_by(document_leases.c.document_id)
                .limit(limit)
            ).all()
        return [row.document_id for row in rows]
