"""What a live client shows, as scopes of one user's entities, and what a read of one returns.

A scope is one of: the user's workspaces, the documents of one of their workspaces, or some
of their documents named by id. Every change of an entity gets a position from one sequence
shared by documents and workspaces; "the changes of a scope after a position" are the
entities of that scope whose latest position is greater, each in its latest state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from domain.entities import Document, Workspace
from domain.status import DocumentProcessingStatus, WorkspaceStatus

MAX_SCOPE_DOCUMENT_IDS = 100


@dataclass(frozen=True, slots=True)
class WorkspacesScope:
    """The user's workspaces."""

    user_id: int


@dataclass(frozen=True, slots=True)
class WorkspaceDocumentsScope:
    """The documents of one of the user's workspaces."""

    user_id: int
    workspace_id: int


@dataclass(frozen=True, slots=True)
class DocumentsScope:
    """Some of the user's documents, named by id (at most ``MAX_SCOPE_DOCUMENT_IDS``)."""

    user_id: int
    document_ids: frozenset[int]


Scope: TypeAlias = WorkspacesScope | WorkspaceDocumentsScope | DocumentsScope
Entity: TypeAlias = Document | Workspace
StatusFilter: TypeAlias = DocumentProcessingStatus | WorkspaceStatus | None


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where a page of a scope starts: after the entity created at ``created_order`` = ``id``.

    Entities are paged in the order they were created (their id), so the key is the id of
    the last entity of the previous page.
    """

    after_id: int


@dataclass(frozen=True, slots=True)
class Changes:
    """A scope's entities changed after a position, oldest change first.

    ``cursor`` is the position to read on from (that of the last entity returned, or the one
    asked after when none); ``head`` is the highest position of any entity of the scope's
    user (``None`` when they have none); ``complete`` is false when more changes exist than
    were asked for.
    """

    entities: list[Entity]
    cursor: int
    head: int | None
    complete: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a scope in creation order, with its user's head position at the read."""

    entities: list[Entity]
    head: int | None
    next_key: PageKey | None


def scope_contains(scope: Scope, entity: Entity) -> bool:
    """Whether ``entity`` belongs to ``scope``."""
    if entity.user_id != scope.user_id:
        return False
    if isinstance(scope, WorkspacesScope):
        return isinstance(entity, Workspace)
    if not isinstance(entity, Document):
        return False
    if isinstance(scope, WorkspaceDocumentsScope):
        return entity.workspace_id == scope.workspace_id
    return entity.id in scope.document_ids
