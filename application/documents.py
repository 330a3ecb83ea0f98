"""Use cases for documents: upload, read, retry."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable, Iterable, Sequence

from application.pipeline import SUPPORTED_EXTENSIONS, document_steps
from application.status_service import StatusService
from domain.entities import Document, Workspace
from domain.errors import PublishFailed
from domain.events import DocumentUploaded
from domain.ports import FileStorage, MessagePublisher, StatusRepository
from domain.ports.storage import FileTooLarge
from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from domain.timing import SIZE_KEY

MAX_FILENAME_LENGTH = 255


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
    ) -> None:
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
        self, *, user_id: int, workspace_id: int, filename: str, content: Iterable[bytes]
    ) -> Result[Document, Problem]:
        checked = self.check_upload(user_id=user_id, workspace_id=workspace_id, filename=filename)
        if isinstance(checked, Err):
            return checked
        workspace, name = checked.value
        extension = posixpath.splitext(name)[1].lower()
        # The key never contains the user's file name, so it cannot climb out of storage.
        storage_key = f"{workspace.id}/{uuid.uuid4().hex}{extension}"
        try:
            size = self._storage.save(storage_key, content, max_bytes=self._max_upload_bytes)
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
            metadata={SIZE_KEY: size},
        )
        self._status.announce(document)
        return self._request_processing(document)

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
        moved = self._status.update_document_status(
            document_id,
            DocumentProcessingStatus.PENDING,
            progress=document.progress.reset(),
            retry=True,
            expected_version=document.version,
        )
        if isinstance(moved, Err):
            return moved
        return self._request_processing(moved.value)

    def _request_processing(self, document: Document) -> Result[Document, Problem]:
        try:
            self._work.publish(
                DocumentUploaded(
                    document_id=document.id,
                    user_id=document.user_id,
                    workspace_id=document.workspace_id,
                    file_path=self._storage.locate(document.storage_key),
                    version=document.version,
                )
            )
        except PublishFailed as exc:
            # Left pending it would wait forever; failed, it shows why and can be retried.
            self._status.update_document_status(
                document.id,
                DocumentProcessingStatus.FAILED,
                error="could not be queued for processing; retry later",
            )
            return Err(Problem(ProblemKind.UNAVAILABLE, f"message broker unavailable: {exc}"))
        return Ok(document)
