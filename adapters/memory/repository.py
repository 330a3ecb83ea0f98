"""A thread-safe in-memory StatusRepository."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.memory.outbox import InMemoryOutbox
from application.tracing import current_traceparent
from domain.changes import DocumentStatusChange, StatusChange, WorkspaceStatusChange
from domain.entities import Document, Workspace
from domain.events import status_event_for
from domain.history import HistoryEntity, StatusHistoryEntry, recorded_status
from domain.ports import StatusRepository
from domain.problems import Problem
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus

E = TypeVar("E", Document, Workspace)


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
        self._history: dict[tuple[HistoryEntity, int], list[StatusHistoryEntry]] = {}

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
            self._remember(workspace, None, None)
            return workspace

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
        with self._lock:
            now = _now()
            document = Document(
                id=next(self._ids),
                user_id=user_id,
                workspace_id=workspace_id,
                filename=filename,
                storage_key=storage_key,
                metadata=dict(metadata or {}),
                progress=progress,
                position=next(self._positions),
                created_at=now,
                updated_at=now,
            )
            self.documents[document.id] = document
            self._record(document)
            self._remember(document, None, None)
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

    def recently_ready(self, limit: int) -> list[Document]:
        """Up to ``limit`` ready documents, the latest changed first."""
        with self._lock:
            ready = [
                d
                for d in self.documents.values()
                if d.processing_status is DocumentProcessingStatus.READY
            ]
        return sorted(ready, key=lambda d: d.position, reverse=True)[:limit]

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        with self._lock:
            found = [w for w in self.workspaces.values() if w.user_id == user_id]
        return sorted(found, key=lambda w: w.id)

    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        return self._apply(change, self.documents)

    def update_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        return self._apply(change, self.workspaces)

    def _apply(self, change: StatusChange, stored: dict[int, E]) -> Result[E, Problem]:
        with self._lock:
            current = stored.get(change.entity_id)
            if current is None:
                return Err(change.not_found())
            refused = change.refusal(getattr(current, change.status_field), current.version)
            if refused is not None:
                return Err(refused)
            changed = dataclasses.replace(
                current,
                **change.written(),
                version=current.version + 1,
                position=next(self._positions),
                updated_at=_now(),
            )
            stored[change.entity_id] = changed
            self._record(changed)
            self._remember(changed, getattr(current, change.status_field).value, change)
            return Ok(changed)

    def history(
        self, entity: HistoryEntity, entity_id: int, *, limit: int, after: int | None = None
    ) -> list[StatusHistoryEntry]:
        with self._lock:
            entries = list(self._history.get((entity, entity_id), ()))
        return [e for e in entries if after is None or e.position > after][:limit]

    def _remember(
        self, entity: Document | Workspace, before: str | None, change: StatusChange | None
    ) -> None:
        kind, status, noted = recorded_status(entity)
        self._history.setdefault((kind, entity.id), []).append(
            StatusHistoryEntry(
                entity=kind,
                entity_id=entity.id,
                at=entity.updated_at,
                from_status=before,
                to_status=status,
                version=entity.version,
                position=entity.position,
                actor=None if change is None else change.actor,
                step=None if change is None else change.step,
                step_seconds=None if change is None else change.step_seconds,
                error=noted,
            )
        )

    def _record(self, entity: Document | Workspace) -> None:
        if self._outbox is not None:
            kind = "document" if isinstance(entity, Document) else "workspace"
            self._outbox.record(
                status_event_for(entity, traceparent=current_traceparent()), f"{kind}:{entity.id}"
            )
