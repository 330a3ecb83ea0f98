"""Status changes as values: what a writer asks for, built once and handed to a store as is.

A change names its entity, the target status, whether it is an explicit retry, the version
the writer based it on, and the fields it writes. Both stores apply it the same way: they
check it against the stored status and version (``refusal``), write ``written()`` and bump
the version; a change that cannot be applied is an ``Err`` carrying a ``Problem``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.status import (
    DOCUMENT_LIFECYCLE,
    WORKSPACE_LIFECYCLE,
    DocumentProcessingStatus,
    Lifecycle,
    WorkspaceStatus,
)

S = TypeVar("S", DocumentProcessingStatus, WorkspaceStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Change(Generic[S]):
    lifecycle: ClassVar[Lifecycle[Any]]
    # The entity field (and SQL column) that holds the status.
    status_field: ClassVar[str]

    status: S
    retry: bool = False
    expected_version: int | None = None
    # Recorded in the status history only, never on the entity: who made the change (a
    # worker's identity, "api" or "user"), and the step it started or ended with its time.
    actor: str | None = None
    step: str | None = None
    step_seconds: float | None = None

    @property
    def entity_id(self) -> int:
        raise NotImplementedError

    @property
    def entity(self) -> str:
        """``document`` or ``workspace``."""
        return str(self.lifecycle.entity)

    def written(self) -> dict[str, Any]:
        """The entity fields this change sets, by name (the status among them)."""
        raise NotImplementedError

    def sources(self) -> frozenset[S]:
        """The statuses this change may be applied from."""
        return frozenset(self.lifecycle.sources(self.status, retry=self.retry))

    def refusal(self, current: S | str, version: int) -> Problem | None:
        """Why this change cannot apply to an entity at ``current`` and ``version``, if it can't.

        ``current`` may be the status or its stored value. A stale ``expected_version`` is
        reported first: the writer's view is outdated, so whether its move would be legal
        says nothing.
        """
        if self.expected_version is not None and version != self.expected_version:
            return self._conflict(
                f"stale write: {self.entity} is at version {version}, "
                f"the writer expected {self.expected_version}"
            )
        source = type(self.status)(current)
        if self.lifecycle.allows(source, self.status, retry=self.retry):
            return None
        return self._conflict(
            self.lifecycle.describe_rejection(source, self.status, retry=self.retry)
        )

    def not_found(self) -> Problem:
        return Problem(ProblemKind.NOT_FOUND, f"{self.entity} {self.entity_id} not found")

    def contended(self) -> Problem:
        """The entity kept changing under concurrent writers while this change was retried."""
        return self._conflict("kept changing under concurrent writers; try again")

    def _conflict(self, reason: str) -> Problem:
        return Problem(ProblemKind.CONFLICT, f"{self.entity} {self.entity_id}: {reason}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentStatusChange(_Change[DocumentProcessingStatus]):
    """Move a document to ``status``; ``error`` is always written, the rest only when given."""

    lifecycle: ClassVar[Lifecycle[Any]] = DOCUMENT_LIFECYCLE
    status_field: ClassVar[str] = "processing_status"

    document_id: int
    error: str | None = None
    chunk_count: int | None = None
    metadata: Mapping[str, Any] | None = None
    progress: Progress | None = None

    def __post_init__(self) -> None:
        if self.metadata is not None:
            # A read-only copy: the change stays what the writer asked for, whatever they do next.
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def entity_id(self) -> int:
        return self.document_id

    def written(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"processing_status": self.status, "processing_error": self.error}
        if self.chunk_count is not None:
            fields["chunk_count"] = self.chunk_count
        if self.metadata is not None:
            fields["metadata"] = dict(self.metadata)
        if self.progress is not None:
            fields["progress"] = self.progress
        return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceStatusChange(_Change[WorkspaceStatus]):
    """Move a workspace to ``status``; ``message`` is always written."""

    lifecycle: ClassVar[Lifecycle[Any]] = WORKSPACE_LIFECYCLE
    status_field: ClassVar[str] = "status"

    workspace_id: int
    message: str | None = None

    @property
    def entity_id(self) -> int:
        return self.workspace_id

    def written(self) -> dict[str, Any]:
        return {"status": self.status, "status_message": self.message}


StatusChange: TypeAlias = DocumentStatusChange | WorkspaceStatusChange
