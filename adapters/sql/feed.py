"""The change feed on SQL: one indexed query per scope and cursor range.

Changes after a position are read along the ``(user_id, position)`` index of workspaces and
the ``(workspace_id, position)`` index of documents; the user's head, the top of the two
``(user_id, position)`` indexes, comes in the same statement. Pages follow the primary key,
which is the creation order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Label, Table, func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import documents, to_document, to_workspace, workspaces
from domain.entities import Document, Workspace
from domain.feed import (
    Changes,
    DocumentsScope,
    Entity,
    Page,
    PageKey,
    Scope,
    StatusFilter,
    WorkspaceDocumentsScope,
    WorkspacesScope,
)
from domain.ports import ChangeFeed
from domain.status import DocumentProcessingStatus


class SqlChangeFeed(ChangeFeed):
    """Reads changes and pages of scopes; the epoch comes from the installation's own record."""

    def __init__(self, sessions: sessionmaker[Session], epoch: Callable[[], str]) -> None:
        self._sessions = sessions
        self._epoch = epoch

    def epoch(self) -> str:
        return self._epoch()

    def changes(self, scope: Scope, *, after: int, limit: int) -> Changes:
        table, where, convert = _scope(scope)
        position = table.c.position
        query = select(table, *_tops(scope.user_id)).where(where, position > after)
        with self._sessions() as session:
            rows = session.execute(query.order_by(position).limit(limit + 1)).all()
            head = _head_of(rows[0]) if rows else _head(session, scope.user_id)
        entities = [convert(row._mapping) for row in rows[:limit]]
        cursor = rows[min(limit, len(rows)) - 1]._mapping["position"] if entities else after
        return Changes(entities, int(cursor), head, complete=len(rows) <= limit)

    def page(
        self, scope: Scope, *, limit: int, after: PageKey | None = None, status: StatusFilter = None
    ) -> Page:
        table, where, convert = _scope(scope)
        query = select(table, *_tops(scope.user_id)).where(where)
        if after is not None:
            query = query.where(table.c.id > after.after_id)
        if status is not None:
            column = (
                table.c.processing_status
                if isinstance(status, DocumentProcessingStatus)
                else table.c.status
            )
            query = query.where(column == status.value)
        query = query.order_by(table.c.id).limit(limit + 1)
        with self._sessions() as session:
            rows = session.execute(query).all()
            head = _head_of(rows[0]) if rows else _head(session, scope.user_id)
        entities = [convert(row._mapping) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(entities, head, PageKey(entities[-1].id) if more else None)


_Convert = Callable[[Any], Entity]


def _tops(user_id: int) -> list[Label[Any]]:
    """The tops of the user's two ``(user_id, position)`` indexes, as columns.

    Uncorrelated, so the database evaluates each once per statement, however many rows.
    """
    return [
        select(func.max(table.c.position))
        .where(table.c.user_id == user_id)
        .scalar_subquery()
        .label(f"top_of_{table.name}")
        for table in (workspaces, documents)
    ]


def _head_of(row: Any) -> int | None:
    found = [
        int(row._mapping[f"top_of_{t.name}"])
        for t in (workspaces, documents)
        if row._mapping[f"top_of_{t.name}"] is not None
    ]
    return max(found) if found else None


def _head(session: Session, user_id: int) -> int | None:
    """The user's highest position, when no row of the scope carried it."""
    return _head_of(session.execute(select(*_tops(user_id))).one())


def _scope(scope: Scope) -> tuple[Table, ColumnElement[bool], _Convert]:
    if isinstance(scope, WorkspacesScope):
        return workspaces, workspaces.c.user_id == scope.user_id, _workspace
    if isinstance(scope, WorkspaceDocumentsScope):
        where = (documents.c.workspace_id == scope.workspace_id) & (
            documents.c.user_id == scope.user_id
        )
        return documents, where, _document
    assert isinstance(scope, DocumentsScope)
    where = documents.c.id.in_(sorted(scope.document_ids)) & (documents.c.user_id == scope.user_id)
    return documents, where, _document


def _workspace(row: Any) -> Workspace:
    return to_workspace(row)


def _document(row: Any) -> Document:
    return to_document(row)
