"""A thread-safe in-memory StatusRepository."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.memory.outbox import InMemoryOutbox
from domain.entities import Document, Workspace
from domain.errors import TransitionRejected
from domain.events import status_event_for
from domain.ports import StatusRepository
from domain.progress import Progress
from domain.status import (
    DOCUMENT_LIFECYCLE,
    WORKSPACE_LIFECYCLE,
    DocumentProcessingStatus,
    WorkspaceStatus,
)


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryStatusRepository(StatusRepository):
    """Keeps entities in dictionaries; one lock makes each check-and-write atomic.

    Positions are taken under that same lock, so they grow in the order changes land.
    """

    def __init__(self, outbox: InMemoryOutbox | None = None) -> None:
        self._outbox = outbox
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._positions = itertools.count(1)
        self._epoch = uuid.uuid4().hex
        self.documents: dict[int, Document] = {}
        self.workspaces: dict[int, Workspace] = {}

    def epoch(self) -> str:
        return self._epoch

    def add_workspace(self, *, user_id: int, name: str) -> Workspace:
        with self._lock:
            now = _now()
            workspace = Workspace(
                id=next(self._ids),
                user_id=user_id,
                name=name,
                position=next(self._positions),
                created_at=now,
                updated_at=now,
            )
            self.workspaces[workspace.id] = workspace
            self._record(workspace)
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
        with self._lock:
            now = _now()
            document = Document(
                id=next(self._ids),
                user_id=user_id,
                workspace_id=workspace_id,
                filename=filename,
                storage_key=storage_key,
                progress=progress,
                position=next(self._positions),
                created_at=now,
                updated_at=now,
            )
            self.documents[document.id] = document
            self._record(document)
            return document

    def get_document(self, document_id: int) -> Document | None:
        return self.documents.get(document_id)

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        return self.workspaces.get(workspace_id)

    def list_documents(self, *, user_id: int, workspace_id: int | None = None) -> list[Document]:
        with self._lock:
            found = [
                d
                for d in self.documents.values()
                if d.user_id == user_id and workspace_id in (None, d.workspace_id)
            ]
        return sorted(found, key=lambda d: d.id)

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        with self._lock:
            found = [w for w in self.workspaces.values() if w.user_id == user_id]
        return sorted(found, key=lambda w: w.id)

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
        with self._lock:
            current = self.documents.get(document_id)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise TransitionRejected.stale("document", expected_version, current.version)
            if not DOCUMENT_LIFECYCLE.allows(current.processing_status, status, retry=retry):
                raise TransitionRejected(
                    DOCUMENT_LIFECYCLE.describe_rejection(
                        current.processing_status, status, retry=retry
                    )
                )
            changed = dataclasses.replace(
                current,
                processing_status=status,
                processing_error=error,
                chunk_count=current.chunk_count if chunk_count is None else chunk_count,
                metadata=current.metadata if metadata is None else dict(metadata),
                progress=current.progress if progress is None else progress,
                version=current.version + 1,
                position=next(self._positions),
                updated_at=_now(),
            )
            self.documents[document_id] = changed
            self._record(changed)
            return changed

    def update_workspace_status(
        self,
        workspace_id: int,
        status: WorkspaceStatus,
        *,
        message: str | None = None,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Workspace | None:
        with self._lock:
            current = self.workspaces.get(workspace_id)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise TransitionRejected.stale("workspace", expected_version, current.version)
            if not WORKSPACE_LIFECYCLE.allows(current.status, status, retry=retry):
                raise TransitionRejected(
                    WORKSPACE_LIFECYCLE.describe_rejection(current.status, status, retry=retry)
                )
            changed = dataclasses.replace(
                current,
                status=status,
                status_message=message,
                version=current.version + 1,
                position=next(self._positions),
                updated_at=_now(),
            )
            self.workspaces[workspace_id] = changed
            self._record(changed)
            return changed

    def _record(self, entity: Document | Workspace) -> None:
        if self._outbox is not None:
            kind = "document" if isinstance(entity, Document) else "workspace"
            self._outbox.record(status_event_for(entity), f"{kind}:{entity.id}")
