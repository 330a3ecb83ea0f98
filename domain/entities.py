"""Documents and workspaces as the core sees them: plain immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus

FIRST_VERSION = 1
# Positions on the change cursor start at 1, so a reader that has seen nothing holds 0.
NO_POSITION = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    id: int
    user_id: int
    workspace_id: int
    filename: str
    storage_key: str
    processing_status: DocumentProcessingStatus = DocumentProcessingStatus.PENDING
    processing_error: str | None = None
    chunk_count: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    version: int = FIRST_VERSION
    # Where the latest change (or the creation) stands on the store's one change cursor.
    position: int = NO_POSITION
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    id: int
    user_id: int
    name: str
    status: WorkspaceStatus = WorkspaceStatus.PROVISIONING
    status_message: str | None = None
    version: int = FIRST_VERSION
    # Where the latest change (or the creation) stands on the store's one change cursor.
    position: int = NO_POSITION
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RagConfig:
    """How a workspace's documents are processed."""

    chunk_size: int = 800
    chunk_overlap: int = 100
    embedding_model: str = "feature-hashing-256"
    graph_enabled: bool = False

    def problems(self) -> list[str]:
        """What is wrong with this configuration, in words a user can act on."""
        found = []
        if self.chunk_size < 50 or self.chunk_size > 100_000:
            found.append(f"chunk_size must be between 50 and 100000, not {self.chunk_size}")
        if self.chunk_overlap < 0 or self.chunk_overlap >= self.chunk_size:
            found.append(
                f"chunk_overlap must be at least 0 and below chunk_size, not {self.chunk_overlap}"
            )
        if not self.embedding_model:
            found.append("embedding_model must be named")
        return found


@dataclass(frozen=True, slots=True)
class Chunk:
    document_id: int
    position: int
    text: str
    vector: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class GraphNode:
    """An entity found in a document (a recurring proper noun or key phrase)."""

    label: str
    mentions: int


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """Two entities that occur in the same chunk, weighted by how many chunks they share."""

    source: str
    target: str
    weight: int
