"""StatusService: stores a status change, then announces it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from domain.entities import Document, Workspace
from domain.errors import PublishFailed, TransitionRejected
from domain.events import status_event_for
from domain.ports import MessagePublisher, StatusRepository
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus

log = logging.getLogger(__name__)


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
    ) -> Result[Document, str]:
        """Move a document to ``status``; ``Err`` when it is missing or the move is illegal."""
        try:
            target = DocumentProcessingStatus(status)
        except ValueError:
            return Err(f"unknown document status {status!r}")
        try:
            document = self.repository.update_document_status(
                document_id,
                target,
                error=error,
                chunk_count=chunk_count,
                metadata=metadata,
                progress=progress,
                retry=retry,
                expected_version=expected_version,
            )
        except TransitionRejected as rejected:
            return Err(f"document {document_id}: {rejected.reason}")
        if document is None:
            return Err(f"document {document_id} not found")
        self._announce(document)
        return Ok(document)

    def update_workspace_status(
        self,
        workspace_id: int,
        status: WorkspaceStatus | str,
        message: str | None = None,
        *,
        retry: bool = False,
        expected_version: int | None = None,
    ) -> Result[Workspace, str]:
        """Move a workspace to ``status``; ``Err`` when it is missing or the move is illegal."""
        try:
            target = WorkspaceStatus(status)
        except ValueError:
            return Err(f"unknown workspace status {status!r}")
        try:
            workspace = self.repository.update_workspace_status(
                workspace_id,
                target,
                message=message,
                retry=retry,
                expected_version=expected_version,
            )
        except TransitionRejected as rejected:
            return Err(f"workspace {workspace_id}: {rejected.reason}")
        if workspace is None:
            return Err(f"workspace {workspace_id} not found")
        self._announce(workspace)
        return Ok(workspace)

    def announce(self, entity: Document | Workspace) -> None:
        """Publish the status event of ``entity`` as it stands (used for newly created ones)."""
        self._announce(entity)

    def _announce(self, entity: Document | Workspace) -> None:
        if self.publisher is None:
            return
        event = status_event_for(entity)
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
