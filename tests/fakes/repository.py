"""Fakes of domain.ports.repository."""

from __future__ import annotations

import dataclasses

from adapters.memory.repository import InMemoryStatusRepository
from domain.changes import DocumentStatusChange, StatusChange, WorkspaceStatusChange
from domain.entities import Document, Workspace
from domain.problems import Problem
from domain.progress import Progress
from domain.result import Result
from domain.status import DocumentProcessingStatus


class DummyStatusRepository(InMemoryStatusRepository):
    """The seed's dummy: document 1 exists and is being processed; nothing else does."""

    def __init__(self) -> None:
        super().__init__()
        workspace = self.add_workspace(user_id=1, name="dummy")
        document = self.add_document(
            user_id=1,
            workspace_id=workspace.id,
            filename="dummy.txt",
            storage_key="dummy.txt",
            progress=Progress.plan(["Parsing"]),
        )
        # Renumbered to the id the seed's test uses, already under way.
        del self.documents[document.id]
        self.documents[1] = dataclasses.replace(
            document, id=1, processing_status=DocumentProcessingStatus.PROCESSING, version=2
        )


class ChangeRecordingRepository(InMemoryStatusRepository):
    """Keeps every status change it is handed, exactly as it was handed, then applies it."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[StatusChange] = []

    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        self.changes.append(change)
        return super().update_document_status(change)

    def update_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        self.changes.append(change)
        return super().update_workspace_status(change)
