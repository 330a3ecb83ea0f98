"""StatusRepository on SQLAlchemy (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adapters.sql.records import documents, outbox, to_document, to_workspace, users, workspaces
from adapters.sql.sessions import SessionSource, transaction
from domain.entities import FIRST_VERSION, Document, Workspace
from domain.errors import TransitionRejected
from domain.events import encode, entity_key, status_event_for
from domain.ports import StatusRepository
from domain.progress import Progress
from domain.status import (
    DOCUMENT_LIFECYCLE,
    WORKSPACE_LIFECYCLE,
    DocumentProcessingStatus,
    Lifecycle,
    WorkspaceStatus,
)

# A failed conditional update is diagnosed by reading the row; if another writer changed it
# in between so that the move has become legal, the update is simply tried again.
_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_user(session: Session, user_id: int, now: datetime) -> None:
    """Create the ``users`` row for a bare user id, unless it exists (tokens carry only ids)."""
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        upsert(users)
        .values(id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )


class SqlStatusRepository(StatusRepository):
    """Documents and workspaces in SQL; each status change is a single conditional UPDATE.

    Built on a ``Session`` (the seed's ``SqlStatusRepository(db)``) it works and commits in
    that session; built on a ``sessionmaker`` every call has its own short session and the
    repository may be shared between threads. With ``outbox=True`` the status event of every
    change (and the creation event of every new entity) is written to the ``outbox`` table in
    the same transaction as the change, for the relay to publish.
    """

    def __init__(self, session_or_factory: SessionSource, *, outbox: bool = False) -> None:
        self._source = session_or_factory
        self._outbox = outbox

    def add_workspace(self, *, user_id: int, name: str) -> Workspace:
        now = _now()
        with transaction(self._source) as session:
            ensure_user(session, user_id, now)
            row = session.execute(
                insert(workspaces)
                .values(
                    user_id=user_id,
                    name=name,
                    status=WorkspaceStatus.PROVISIONING.value,
                    status_message=None,
                    version=FIRST_VERSION,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*workspaces.c)
            ).one()
            workspace = to_workspace(row._mapping)
            self._record_event(session, workspace, now)
        return workspace

    def add_document(
        self,
        *,
        user_id: int,
        workspace_id: int,
        filename: str,
        storage_key: str,
        progress: Progress,
    ) -> Document:
        now = _now()
        with transaction(self._source) as session:
            ensure_user(session, user_id, now)
            row = session.execute(
                insert(documents)
                .values(
                    user_id=user_id,
                    workspace_id=workspace_id,
                    filename=filename,
                    storage_key=storage_key,
                    processing_status=DocumentProcessingStatus.PENDING.value,
                    processing_error=None,
                    chunk_count=0,
                    metadata={},
                    progress=progress.to_json(),
                    version=FIRST_VERSION,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*documents.c)
            ).one()
            document = to_document(row._mapping)
            self._record_event(session, document, now)
        return document

    def get_document(self, document_id: int) -> Document | None:
        with transaction(self._source) as session:
            row = session.execute(select(documents).where(documents.c.id == document_id)).first()
        return None if row is None else to_document(row._mapping)

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        with transaction(self._source) as session:
            row = session.execute(select(workspaces).where(workspaces.c.id == workspace_id)).first()
        return None if row is None else to_workspace(row._mapping)

    def list_documents(self, *, user_id: int, workspace_id: int | None = None) -> list[Document]:
        query = select(documents).where(documents.c.user_id == user_id)
        if workspace_id is not None:
            query = query.where(documents.c.workspace_id == workspace_id)
        with transaction(self._source) as session:
            rows = session.execute(query.order_by(documents.c.id)).all()
        return [to_document(row._mapping) for row in rows]

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        query = select(workspaces).where(workspaces.c.user_id == user_id)
        with transaction(self._source) as session:
            rows = session.execute(query.order_by(workspaces.c.id)).all()
        return [to_workspace(row._mapping) for row in rows]

    def update_document_status(
        self,
        document_id: int,
        status: DocumentProcessingStatus,
        *,
        error: str | None = None,
        chunk_count: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Document | None:
        now = _now()
        changes: dict[str, Any] = {
            "processing_status": status.value,
            "processing_error": error,
            "updated_at": now,
        }
        if chunk_count is not None:
            changes["chunk_count"] = chunk_count
        if metadata is not None:
            changes["metadata"] = dict(metadata)
        if progress is not None:
            changes["progress"] = progress.to_json()
        with transaction(self._source) as session:
            row = _change_status(
                session,
                documents,
                "processing_status",
                DOCUMENT_LIFECYCLE,
                entity_id=document_id,
                target=status,
                changes=changes,
                retry=retry,
                expected_version=expected_version,
            )
            if row is None:
                return None
            document = to_document(row._mapping)
            self._record_event(session, document, now)
        return document

    def update_workspace_status(
        self,
        workspace_id: int,
        status: WorkspaceStatus,
        *,
        message: str | None = None,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Workspace | None:
        now = _now()
        changes: dict[str, Any] = {
            "status": status.value,
            "status_message": message,
            "updated_at": now,
        }
        with transaction(self._source) as session:
            row = _change_status(
                session,
                workspaces,
                "status",
                WORKSPACE_LIFECYCLE,
                entity_id=workspace_id,
                target=status,
                changes=changes,
                retry=retry,
                expected_version=expected_version,
            )
            if row is None:
                return None
            workspace = to_workspace(row._mapping)
            self._record_event(session, workspace, now)
        return workspace

    def _record_event(self, session: Session, entity: Document | Workspace, now: datetime) -> None:
        if not self._outbox:
            return
        event = status_event_for(entity)
        entity_type, entity_id = entity_key(event)
        session.execute(
            insert(outbox).values(
                event_id=event.event_id,
                routing_key=event.routing_key,
                body=encode(event).decode(),
                entity_type=entity_type,
                entity_id=entity_id,
                version=entity.version,
                created_at=now,
            )
        )


def _change_status(
    session: Session,
    table: Table,
    status_column: str,
    lifecycle: Lifecycle[Any],
    *,
    entity_id: int,
    target: Enum,
    changes: Mapping[str, Any],
    retry: bool,
    expected_version: int | None,
) -> Row[Any] | None:
    """Apply a status change in one statement; the changed row, or ``None`` if there is none.

    The lifecycle check and ``version = version + 1`` are the WHERE and SET of a single
    ``UPDATE … RETURNING`` (PostgreSQL, and SQLite since 3.35). The database evaluates both
    on the latest committed row while holding its write lock: PostgreSQL re-checks the WHERE
    after waiting for a concurrent writer, SQLite has one writer at a time. So two processes
    can never skip or repeat a version or slip an illegal move in, without a separate
    ``SELECT … FOR UPDATE`` round trip (which SQLite lacks) or optimistic retry loops in the
    common case. Only a rejected change costs a second statement, to say why it was rejected.
    """
    allowed: Collection[str] = sorted(s.value for s in lifecycle.sources(target, retry=retry))
    status = table.c[status_column]
    condition = (table.c.id == entity_id) & status.in_(allowed)
    if expected_version is not None:
        condition &= table.c.version == expected_version
    statement = (
        update(table)
        .where(condition)
        .values({**changes, "version": table.c.version + 1})
        .returning(*table.c)
    )
    for _ in range(_ATTEMPTS):
        row = session.execute(statement).first()
        if row is not None:
            return row
        current = session.execute(
            select(status, table.c.version).where(table.c.id == entity_id)
        ).first()
        if current is None:
            return None
        current_status, current_version = current
        if expected_version is not None and current_version != expected_version:
            raise TransitionRejected.stale(lifecycle.entity, expected_version, current_version)
        if current_status not in allowed:
            source = type(target)(current_status)
            raise TransitionRejected(lifecycle.describe_rejection(source, target, retry=retry))
    raise TransitionRejected(
        f"{lifecycle.entity} {entity_id} kept changing under concurrent writers; try again"
    )
