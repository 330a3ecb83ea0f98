"""The change feed of the in-memory repository: the same answers, from its list reads."""

from __future__ import annotations

from adapters.memory.repository import InMemoryStatusRepository
from domain.entities import Document
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


def _position(entity: Entity) -> int:
    return entity.position


def _status(entity: Entity) -> object:
    return entity.processing_status if isinstance(entity, Document) else entity.status


class InMemoryChangeFeed(ChangeFeed):
    """Reads the repository's entities; its epoch is the repository's, new with every process."""

    def __init__(self, repository: InMemoryStatusRepository) -> None:
        self._repository = repository

    def epoch(self) -> str:
        return self._repository.epoch()

    def changes(self, scope: Scope, *, after: int, limit: int) -> Changes:
        found = self._of(scope)
        changed = sorted((e for e in found if _position(e) > after), key=_position)
        head = self._head(scope.user_id)
        taken = changed[:limit]
        cursor = _position(taken[-1]) if taken else after
        return Changes(taken, cursor, head, complete=len(changed) <= limit)

    def page(
        self, scope: Scope, *, limit: int, after: PageKey | None = None, status: StatusFilter = None
    ) -> Page:
        found = self._of(scope)
        head = self._head(scope.user_id)
        start = 0 if after is None else after.after_id
        chosen = sorted(
            (e for e in found if e.id > start and status in (None, _status(e))),
            key=lambda e: e.id,
        )
        taken = chosen[:limit]
        more = len(chosen) > limit
        return Page(taken, head, PageKey(taken[-1].id) if more else None)

    def _head(self, user_id: int) -> int | None:
        everything: list[Entity] = [
            *self._repository.list_workspaces(user_id=user_id),
            *self._repository.list_documents(user_id=user_id),
        ]
        return max((_position(e) for e in everything), default=None)

    def _of(self, scope: Scope) -> list[Entity]:
        # Through the repository's own reads, so that what fails there fails here too.
        repository = self._repository
        if isinstance(scope, WorkspacesScope):
            return list(repository.list_workspaces(user_id=scope.user_id))
        if isinstance(scope, WorkspaceDocumentsScope):
            return list(
                repository.list_documents(user_id=scope.user_id, workspace_id=scope.workspace_id)
            )
        assert isinstance(scope, DocumentsScope)
        found = repository.list_documents(user_id=scope.user_id)
        return [d for d in found if d.id in scope.document_ids]
