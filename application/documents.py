"""Use cases for documents: upload, read, retry, cancel, history."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable, Iterable, Sequence

from application.jobs import TERMINAL
from application.pipeline import SUPPORTED_EXTENSIONS, document_steps
from application.quotas import Quotas, Reservation
from application.status_service import StatusService
from application.tracing import current_traceparent
from domain.changes import DocumentStatusChange
from domain.entities import Document, Workspace
from domain.errors import PublishFailed
from domain.events import DocumentUploaded
from domain.history import API_ACTOR, USER_ACTOR, HistoryEntity, StatusHistoryEntry
from domain.ports import FileStorage, MessagePublisher, StatusRepository
from domain.ports.storage import FileTooLarge
from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from domain.timing import SIZE_KEY

MAX_FILENAME_LENGTH = 255
CANCELLED = "cancelled by user"
# A cancel races the worker's own writes (each step start bumps the version); it reads the
# document again and retries this many times before giving up.
CANCEL_ATTEMPTS = 5


def clean_filename(raw: str) -> str | None:
    """The file's own name without any directory part, or ``None`` if nothing usable is left."""
    name = posixpath.basename(raw.replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())
    if name in {"", ".", ".."} or len(name) > MAX_FILENAME_LENGTH:
        return None
    return name


class Documents:
    """Accepts uploads into ready workspaces and hands them to processing."""

    def __init__(
        self,
        repository: StatusRepository,
        status_service: StatusService,
        storage: FileStorage,
        work_publisher: MessagePublisher,
        *,
        max_upload_bytes: int,
        plan_for: Callable[[Workspace], Sequence[str]] = document_steps,
        quotas: Quotas | None = None,
    ) -> None:
        self._quotas = quotas
        self._repository = repository
        self._status = status_service
        self._storage = storage
        self._work = work_publisher
        self._max_upload_bytes = max_upload_bytes
        self._plan_for = plan_for

    def check_upload(
        self, *, user_id: int, workspace_id: int, filename: str
    ) -> Result[tuple[Workspace, str], Problem]:
        """Everything about an upload that can be refused before its bytes are read."""
        workspace = self._repository.get_workspace(workspace_id)
        if workspace is None or workspace.user_id != user_id:
            return Err(Problem(ProblemKind.NOT_FOUND, f"workspace {workspace_id} not found"))
        if workspace.status is not WorkspaceStatus.READY:
            return Err(
                Problem(ProblemKind.CONFLICT, f"workspace is {workspace.status.value}, not ready")
            )
        name = clean_filename(filename)
        if name is None:
            return Err(Problem(ProblemKind.INVALID, "the file needs a plain name"))
        extension = posixpath.splitext(name)[1].lower()
        if extension not in SUPPORTED_EXTENSIONS:
            supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            return Err(
                Problem(
                    ProblemKind.UNSUPPORTED,
                    f"unsupported file type '{extension or name}'; supported: {supported}",
                )
            )
        return Ok((workspace, name))

    def upload(
        self,
        *,
        user_id: int,
        workspace_id: int,
        filename: str,
        content: Iterable[bytes],
        size: int | None = None,
    ) -> Result[Document, Problem]:
        """Store ``content`` (``size`` bytes, when known) as a new document and queue it."""
        checked = self.check_upload(user_id=user_id, workspace_id=workspace_id, filename=filename)
        if isinstance(checked, Err):
            return checked
        workspace, name = checked.value
        extension = posixpath.splitext(name)[1].lower()
        # The key never contains the user's file name, so it cannot climb out of storage.
        storage_key = f"{workspace.id}/{uuid.uuid4().hex}{extension}"
        admitted = self._admit(user_id, size)
        if isinstance(admitted, Err):
            return admitted
        with admitted.value as reservation:
            try:
                stored = self._storage.save(storage_key, content, max_bytes=self._max_upload_bytes)
            except FileTooLarge:
                return Err(
                    Problem(
                        ProblemKind.TOO_LARGE,
                        f"file exceeds the upload limit of {self._max_upload_bytes} bytes",
                    )
                )
            document = self._repository.add_document(
                user_id=user_id,
                workspace_id=workspace.id,
                filename=name,
                storage_key=storage_key,
                progress=Progress.plan(self._plan_for(workspace)),
                # The size scales the estimate of how long its steps will take.
                metadata={SIZE_KEY: stored},
            )
            reservation.keep(stored)
        self._status.announce(document)
        return self._request_processing(document)

    def _admit(self, user_id: int, size: int | None) -> Result[Reservation, Problem]:
        # Unknown sizes reserve the most an upload may be; what is not used is given back.
        if self._quotas is None:
            return Ok(Reservation.unlimited())
        return self._quotas.admit(user_id, self._max_upload_bytes if size is None else size)

    def get(self, *, user_id: int, document_id: int) -> Result[Document, Problem]:
        document = self._repository.get_document(document_id)
        if document is None or document.user_id != user_id:
            return Err(Problem(ProblemKind.NOT_FOUND, f"document {document_id} not found"))
        return Ok(document)

    def list(
        self, *, user_id: int, workspace_id: int | None = None
    ) -> Result[list[Document], Problem]:
        if workspace_id is not None:
            workspace = self._repository.get_workspace(workspace_id)
            if workspace is None or workspace.user_id != user_id:
                return Err(Problem(ProblemKind.NOT_FOUND, f"workspace {workspace_id} not found"))
        return Ok(self._repository.list_documents(user_id=user_id, workspace_id=workspace_id))

    def retry(self, *, user_id: int, document_id: int) -> Result[Document, Problem]:
        found = self.get(user_id=user_id, document_id=document_id)
        if isinstance(found, Err):
            return found
        document = found.value
        if document.processing_status is not DocumentProcessingStatus.FAILED:
            return Err(Problem(ProblemKind.CONFLICT, "only a failed document can be retried"))
        moved = self._status.change_document_status(
            DocumentStatusChange(
                document_id=document_id,
                status=DocumentProcessingStatus.PENDING,
                progress=document.progress.reset(),
                # A retried cancelled document is no longer cancelled.
                metadata={k: v for k, v in document.metadata.items() if k != "cancelled"},
                retry=True,
                expected_version=document.version,
                actor=USER_ACTOR,
            )
        )
        if isinstance(moved, Err):
            return moved
        return self._request_processing(moved.value)

    def cancel(
        self, *, user_id: int | None, document_id: int, actor: str = USER_ACTOR
    ) -> Result[Document, Problem]:
        """Fail a pending or processing document as cancelled; its worker sees it and stops.

        ``user_id`` ``None`` is the operator, who may cancel anyone's document.
        """
        for _ in range(CANCEL_ATTEMPTS):
            document = self._repository.get_document(document_id)
            if document is None or user_id not in (None, document.user_id):
                return Err(Problem(ProblemKind.NOT_FOUND, f"document {document_id} not found"))
            if document.processing_status in TERMINAL:
                return Err(
                    Problem(
                        ProblemKind.CONFLICT,
                        f"document is {document.processing_status.value}; only a pending or "
                        "processing document can be cancelled",
                    )
                )
            running = document.progress.current
            moved = self._status.change_document_status(
                DocumentStatusChange(
                    document_id=document_id,
                    status=DocumentProcessingStatus.FAILED,
                    error=CANCELLED,
                    metadata={**document.metadata, "cancelled": True},
                    progress=document.progress
                    if running is None
                    else document.progress.fail(running),
                    expected_version=document.version,
                    actor=actor,
                    step=running,
                )
            )
            if isinstance(moved, Ok) or moved.error.kind is not ProblemKind.CONFLICT:
                return moved
        return Err(
            Problem(ProblemKind.CONFLICT, f"document {document_id} kept changing; try again")
        )

    def history(
        self, *, user_id: int, document_id: int, limit: int, after: int | None = None
    ) -> Result[Sequence[StatusHistoryEntry], Problem]:
        """The document's status history, oldest first, for its owner."""
        found = self.get(user_id=user_id, document_id=document_id)
        if isinstance(found, Err):
            return found
        return Ok(
            self._repository.history(HistoryEntity.DOCUMENT, document_id, limit=limit, after=after)
        )

    def _request_processing(self, document: Document) -> Result[Document, Problem]:
        try:
            self._work.publish(
                DocumentUploaded(
                    document_id=document.id,
                    user_id=document.user_id,
                    workspace_id=document.workspace_id,
                    file_path=self._storage.locate(document.storage_key),
                    version=document.version,
                    traceparent=current_traceparent(),
                )
            )
        except PublishFailed as exc:
            # Left pending it would wait forever; failed, it shows why and can be retried.
            self._status.change_document_status(
                DocumentStatusChange(
                    document_id=document.id,
                    status=DocumentProcessingStatus.FAILED,
                    error="could not be queued for processing; retry later",
                    actor=API_ACTOR,
                )
            )
            return Err(Problem(ProblemKind.UNAVAILABLE, f"message broker unavailable: {exc}"))
        return Ok(document)
