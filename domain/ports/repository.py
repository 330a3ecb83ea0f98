"""Persistence of documents and workspaces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.entities import Document, RagConfig, Workspace
from domain.history import HistoryEntity, StatusHistoryEntry
from domain.problems import Problem
from domain.progress import Progress
from domain.result import Result
from domain.status import DocumentProcessingStatus


class StatusRepository(ABC):
    """Stores documents and workspaces and applies each status change atomically.

    A status change is checked against the lifecycle and stored with ``version + 1`` as one
    atomic step: two writers can never skip or repeat a version, nor slip an illegal move in.
    The update methods return ``Ok`` with the changed entity, or ``Err`` with a ``Problem``:
    ``NOT_FOUND`` when the entity does not exist, ``CONFLICT`` when the move is illegal or
    ``expected_version`` is stale (see ``domain.changes``).

    Every change and every creation also takes the next ``position`` on one change cursor
    shared by documents and workspaces. Positions grow in commit order: once a reader has seen
    every change up to position C, no change with a position at or below C commits later.
    """

    @abstractmethod
    def epoch(self) -> str:
        """This store's random identity: positions compare only within one epoch."""

    @abstractmethod
    def add_workspace(self, *, user_id: int, name: str) -> Workspace:
        """Create a workspace in ``provisioning`` at version 1."""

    @abstractmethod
    def add_document(
        self,
        *,
        user_id: int,
        workspace_id: int,
        filename: str,
        storage_key: str,
        progress: Progress,
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        """Create a document in ``pending`` at version 1, with ``metadata`` (default: none)."""

    @abstractmethod
    def get_document(self, document_id: int) -> Document | None:
        """The document, or ``None``."""

    @abstractmethod
    def get_workspace(self, workspace_id: int) -> Workspace | None:
        """The workspace, or ``None``."""

    @abstractmethod
    def list_documents(self, *, user_id: int, workspace_id: int | None = None) -> list[Document]:
        """A user's documents, optionally of one workspace, oldest first."""

    @abstractmethod
    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        """A user's workspaces, oldest first."""

    @abstractmethod
    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        """Apply ``change`` to its document: the changed document, or why it was refused."""

    @abstractmethod
    def update_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        """Apply ``change`` to its workspace: the changed workspace, or why it was refused."""

    @abstractmethod
    def history(
        self, entity: HistoryEntity, entity_id: int, *, limit: int, after: int | None = None
    ) -> list[StatusHistoryEntry]:
        """Up to ``limit`` entries of the entity's status history after position ``after``.

        Every creation and every applied change is kept, in the transaction that stores it,
        oldest first; a refused change leaves none.
        """


class RagConfigs(ABC):
    """Stores each workspace's processing settings and each user's defaults for new ones."""

    @abstractmethod
    def defaults_for(self, user_id: int) -> RagConfig | None:
        """The user's default settings, or ``None`` when they have set none."""

    @abstractmethod
    def set_defaults(self, user_id: int, config: RagConfig) -> None:
        """Store (or replace) the user's default settings."""

    @abstractmethod
    def for_workspace(self, workspace_id: int) -> RagConfig | None:
        """The workspace's settings, or ``None`` before it is provisioned."""

    @abstractmethod
    def save_for_workspace(self, workspace_id: int, config: RagConfig) -> None:
        """Store (or replace) the workspace's settings."""


class DocumentLeases(ABC):
    """Time-limited claims of a worker on a document, judged by the store's own clock."""

    # A worker may die holding a document before its first status write (still pending)
    # or while processing it: both are taken up again once the lease runs out.
    RECOVERABLE = frozenset({DocumentProcessingStatus.PENDING, DocumentProcessingStatus.PROCESSING})

    @abstractmethod
    def acquire(self, document_id: int, owner: str, seconds: float) -> bool:
        """Claim the document unless another owner holds an unexpired lease; renews one's own."""

    @abstractmethod
    def release(self, document_id: int, owner: str) -> None:
        """Give up the lease if ``owner`` holds it."""

    @abstractmethod
    def expired(self, limit: int = 100) -> list[int]:
        """Documents still pending or processing whose lease ran out (their worker is gone)."""
