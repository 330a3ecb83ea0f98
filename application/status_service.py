"""StatusService: stores a status change, then announces it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from application.tracing import current_traceparent
from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.entities import Document, Workspace
from domain.errors import PublishFailed
from domain.events import status_event_for
from domain.ports import MessagePublisher, StatusRepository
from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus

log = logging.getLogger(__name__)

E = TypeVar("E", Document, Workspace)


class StatusService:
    """Coordinates status updates with event publishing.

    The repository validates the move and assigns the next version atomically; on success
    exactly one status event is published. With no publisher (unit tests, or outbox delivery,
    where the repository itself records the event in the same transaction) nothing is sent.
    A publish that still fails after ``publish_attempts`` tries is logged and counted in
    ``lost_events``: the database change stands, and sockets converge on their next snapshot.
    """

    def __init__(
        self,
        status_repository: StatusRepository,
        message_publisher: MessagePublisher | None,
        *,
        publish_attempts: int = 3,
        retry_delay: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repository = status_repository
        self.publisher = message_publisher
        self._publish_attempts = max(1, publish_attempts)
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._lost_lock = threading.Lock()
        self.lost_events = 0

    def update_document_status(
        self,
        document_id: int,
        status: DocumentProcessingStatus | str,
        error: str | None = None,
        chunk_count: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Result[Document, Problem]:
        """Move a document to ``status``; ``Err`` when it is missing or the move is illegal."""
        try:
            target = DocumentProcessingStatus(status)
        except ValueError:
            return Err(Problem(ProblemKind.INVALID, f"unknown document status {status!r}"))
        return self.change_document_status(
            DocumentStatusChange(
                document_id=document_id,
                status=target,
                error=error,
                chunk_count=chunk_count,
                metadata=metadata,
                progress=progress,
                retry=retry,
                expected_version=expected_version,
            )
        )

    def update_workspace_status(
        self,
        workspace_id: int,
        status: WorkspaceStatus | str,
        message: str | None = None,
        *,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Result[Workspace, Problem]:
        """Move a workspace to ``status``; ``Err`` when it is missing or the move is illegal."""
        try:
            target = WorkspaceStatus(status)
        except ValueError:
            return Err(Problem(ProblemKind.INVALID, f"unknown workspace status {status!r}"))
        return self.change_workspace_status(
            WorkspaceStatusChange(
                workspace_id=workspace_id,
                status=target,
                message=message,
                retry=retry,
                expected_version=expected_version,
            )
        )

    def change_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        """Store ``change`` and announce the changed document; ``Err`` says why it was refused."""
        return self._announced(self.repository.update_document_status(change))

    def change_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        """Store ``change`` and announce the changed workspace; ``Err`` says why it was refused."""
        return self._announced(self.repository.update_workspace_status(change))

    def _announced(self, stored: Result[E, Problem]) -> Result[E, Problem]:
        if isinstance(stored, Ok):
            self._announce(stored.value)
        return stored

    def announce(self, entity: Document | Workspace) -> None:
        """Publish the status event of ``entity`` as it stands (used for newly created ones)."""
        self._announce(entity)

    def _announce(self, entity: Document | Workspace) -> None:
        if self.publisher is None:
            return
        event = status_event_for(entity, traceparent=current_traceparent())
        for attempt in range(1, self._publish_attempts + 1):
            try:
                self.publisher.publish(event)
                return
            except PublishFailed as exc:
                if attempt < self._publish_attempts:
                    self._sleep(self._retry_delay * attempt)
                    continue
                with self._lost_lock:
                    self.lost_events += 1
                log.error(
                    "status event lost after %d attempts",
                    attempt,
                    extra={
                        "event_id": event.event_id,
                        "routing_key": event.routing_key,
                        "reason": str(exc),
                    },
                )
