"""The operator's views on SQLAlchemy: worker heartbeats, the operator log, and stuck work.

Heartbeats and leases are judged by the database's clock, shared by every process.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, delete, desc, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.leases import database_now
from adapters.sql.records import document_leases, documents, operator_actions, worker_heartbeats
from adapters.sql.sessions import transaction
from domain.ports import (
    DocumentLeases,
    OperatorAction,
    OperatorLog,
    StuckDocument,
    StuckWork,
    WorkerBeat,
    WorkerRegistry,
)
from domain.status import DocumentProcessingStatus


class SqlWorkerRegistry(WorkerRegistry):
    """Heartbeats in ``worker_heartbeats``, one row per worker process."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def beat(self, beat: WorkerBeat) -> None:
        with transaction(self._sessions) as session:
            upsert = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            values = {
                "stage": beat.stage,
                "host": beat.host,
                "pid": beat.pid,
                "current_documents": list(beat.current_documents),
                "processed": beat.processed,
                "failed": beat.failed,
                "seen_at": database_now(session),
            }
            statement = upsert(worker_heartbeats).values(worker_id=beat.worker_id, **values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["worker_id"],
                    set_={name: statement.excluded[name] for name in values},
                )
            )

    def live(self, within_seconds: float) -> list[WorkerBeat]:
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(worker_heartbeats)
                .where(
                    worker_heartbeats.c.seen_at >= database_now(session) - literal(within_seconds)
                )
                .order_by(worker_heartbeats.c.stage, worker_heartbeats.c.worker_id)
            ).all()
        return [
            WorkerBeat(
                worker_id=row.worker_id,
                stage=row.stage,
                host=row.host,
                pid=row.pid,
                current_documents=tuple(int(d) for d in row.current_documents),
                processed=row.processed,
                failed=row.failed,
                seen_at=datetime.fromtimestamp(row.seen_at, UTC),
            )
            for row in rows
        ]

    def forget(self, worker_id: str) -> None:
        with transaction(self._sessions) as session:
            session.execute(
                delete(worker_heartbeats).where(worker_heartbeats.c.worker_id == worker_id)
            )


class SqlOperatorLog(OperatorLog):
    """Actions in ``operator_actions``, newest first by id."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def record(self, action: OperatorAction) -> None:
        with transaction(self._sessions) as session:
            session.execute(
                operator_actions.insert().values(
                    at=datetime.now(UTC),
                    actor=action.actor,
                    action=action.action,
                    target=action.target,
                    outcome=action.outcome,
                )
            )

    def recent(self, limit: int = 100, *, actor: str | None = None) -> list[OperatorAction]:
        query = select(operator_actions).order_by(desc(operator_actions.c.id)).limit(limit)
        if actor is not None:
            query = query.where(operator_actions.c.actor == actor)
        with transaction(self._sessions) as session:
            rows = session.execute(query).all()
        return [
            OperatorAction(
                actor=row.actor,
                action=row.action,
                target=row.target,
                outcome=row.outcome,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
            )
            for row in rows
        ]


class SqlStuckWork(StuckWork):
    """Documents joined with their leases, judged by the database's clock."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def find(self, *, expiring_within: float, limit: int = 100) -> list[StuckDocument]:
        processing = DocumentProcessingStatus.PROCESSING.value
        recoverable = [s.value for s in DocumentLeases.RECOVERABLE]
        with transaction(self._sessions) as session:
            now = database_now(session)
            rows = session.execute(
                select(
                    documents.c.id,
                    documents.c.processing_status,
                    document_leases.c.owner,
                    (document_leases.c.expires_at - now).label("seconds_left"),
                )
                .outerjoin(document_leases, document_leases.c.document_id == documents.c.id)
                .where(
                    or_(
                        and_(
                            documents.c.processing_status == processing,
                            document_leases.c.document_id.is_(None),
                        ),
                        and_(
                            documents.c.processing_status.in_(recoverable),
                            document_leases.c.expires_at <= now + literal(expiring_within),
                        ),
                    )
                )
                .order_by(documents.c.id)
                .limit(limit)
            ).all()
        return [
            StuckDocument(
                document_id=row.id,
                status=row.processing_status,
                owner=row.owner,
                seconds_left=None if row.seconds_left is None else float(row.seconds_left),
            )
            for row in rows
        ]
