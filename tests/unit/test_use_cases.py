"""Workspaces and Documents: tenancy, refusals, retry, and a broker that is away."""

from __future__ import annotations

import pytest

from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.storage import InMemoryFileStorage
from application.documents import Documents, clean_filename
from application.status_service import StatusService
from application.workspaces import Workspaces
from domain.events import DocumentUploaded, WorkspaceCreated
from domain.problems import ProblemKind
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.fakes.messaging import FlakyPublisher, RecordingPublisher

OWNER, STRANGER = 1, 2


class World:
    def __init__(self, *, work_failures: int = 0, limit: int = 1000) -> None:
        self.repository = InMemoryStatusRepository()
        self.status_events = RecordingPublisher()
        self.work = FlakyPublisher(failures=work_failures)
        self.storage = InMemoryFileStorage()
        self.status = StatusService(self.repository, self.status_events)
        self.workspaces = Workspaces(self.repository, self.status, self.work)
        self.documents = Documents(
            self.repository, self.status, self.storage, self.work, max_upload_bytes=limit
        )

    def ready_workspace(self) -> int:
        workspace = self.workspaces.create(user_id=OWNER, name="w").unwrap()
        self.status.update_workspace_status(workspace.id, WorkspaceStatus.READY).unwrap()
        return workspace.id


def test_creating_a_workspace_announces_it_and_requests_provisioning() -> None:
    world = World()
    workspace = world.workspaces.create(user_id=OWNER, name="  Research  ").unwrap()
    assert (workspace.name, workspace.status, workspace.version) == (
        "Research",
        WorkspaceStatus.PROVISIONING,
        1,
    )
    assert [type(e) for e in world.work.events] == [WorkspaceCreated]
    assert len(world.status_events.events) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_workspace_needs_a_sensible_name(name: str) -> None:
    result = World().workspaces.create(user_id=OWNER, name=name)
    assert result.is_err()
    assert result.error.kind is ProblemKind.INVALID


def test_a_user_sees_only_their_own() -> None:
    world = World()
    workspace_id = world.ready_workspace()
    document = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="a.txt", content=[b"hello"]
    ).unwrap()
    assert world.workspaces.get(user_id=STRANGER, workspace_id=workspace_id).error.kind is (
        ProblemKind.NOT_FOUND
    )
    assert world.documents.get(user_id=STRANGER, document_id=document.id).error.kind is (
        ProblemKind.NOT_FOUND
    )
    assert world.documents.list(user_id=STRANGER, workspace_id=workspace_id).is_err()
    assert world.workspaces.list(user_id=STRANGER) == []
    assert world.documents.list(user_id=OWNER).unwrap() == [document]
    stranger_upload = world.documents.upload(
        user_id=STRANGER, workspace_id=workspace_id, filename="b.txt", content=[b"x"]
    )
    assert stranger_upload.error.kind is ProblemKind.NOT_FOUND


def test_uploads_need_a_ready_workspace_a_known_type_and_a_plain_name() -> None:
    world = World()
    provisioning = world.workspaces.create(user_id=OWNER, name="p").unwrap()
    refused = world.documents.upload(
        user_id=OWNER, workspace_id=provisioning.id, filename="a.txt", content=[b"x"]
    )
    assert refused.error.kind is ProblemKind.CONFLICT
    workspace_id = world.ready_workspace()
    exe = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="tool.exe", content=[b"MZ"]
    )
    assert exe.error.kind is ProblemKind.UNSUPPORTED
    assert ".exe" in exe.error.message
    nameless = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="../..", content=[b"x"]
    )
    assert nameless.error.kind is ProblemKind.INVALID
    assert world.storage.files == {}
    assert world.repository.documents == {}


def test_path_traversal_names_are_reduced_to_the_file_name() -> None:
    assert clean_filename("../../etc/passwd.txt") == "passwd.txt"
    assert clean_filename("..\\..\\boot.ini.md") == "boot.ini.md"
    assert clean_filename("/abs/report.pdf") == "report.pdf"
    assert clean_filename("a\x00b.txt") == "ab.txt"
    assert clean_filename("..") is None
    world = World()
    workspace_id = world.ready_workspace()
    document = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="../../x/evil.txt", content=[b"hi"]
    ).unwrap()
    assert document.filename == "evil.txt"
    assert ".." not in document.storage_key
    assert document.storage_key.startswith(f"{workspace_id}/")


def test_an_oversize_upload_is_refused_and_leaves_nothing_behind() -> None:
    world = World(limit=10)
    workspace_id = world.ready_workspace()
    result = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="big.txt", content=[b"12345", b"678901"]
    )
    assert result.error.kind is ProblemKind.TOO_LARGE
    assert world.storage.files == {}
    assert world.repository.documents == {}


def test_upload_stores_the_file_creates_it_pending_and_requests_processing() -> None:
    world = World()
    workspace_id = world.ready_workspace()
    document = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="a.md", content=[b"# a", b"\nb"]
    ).unwrap()
    assert document.processing_status is DocumentProcessingStatus.PENDING
    assert document.progress.labels == (
        "Parsing",
        "Chunking text",
        "Generating embeddings",
        "Indexing to vector store",
    )
    assert world.storage.read(document.storage_key) == b"# a\nb"
    request = world.work.events[-1]
    assert isinstance(request, DocumentUploaded)
    assert (request.document_id, request.user_id, request.workspace_id) == (
        document.id,
        OWNER,
        workspace_id,
    )


def test_only_failed_documents_and_errored_workspaces_can_be_retried() -> None:
    world = World()
    workspace_id = world.ready_workspace()
    document = world.documents.upload(
        user_id=OWNER, workspace_id=workspace_id, filename="a.txt", content=[b"x"]
    ).unwrap()
    assert world.documents.retry(user_id=OWNER, document_id=document.id).error.kind is (
        ProblemKind.CONFLICT
    )
    world.status.update_document_status(document.id, "failed", error="bad").unwrap()
    retried = world.documents.retry(user_id=OWNER, document_id=document.id).unwrap()
    assert (retried.processing_status, retried.processing_error, retried.version) == (
        DocumentProcessingStatus.PENDING,
        None,
        3,
    )
    assert world.workspaces.retry(user_id=OWNER, workspace_id=workspace_id).is_err()
    broken = world.workspaces.create(user_id=OWNER, name="b").unwrap()
    world.status.update_workspace_status(broken.id, "error", message="disk").unwrap()
    again = world.workspaces.retry(user_id=OWNER, workspace_id=broken.id).unwrap()
    assert again.status is WorkspaceStatus.PROVISIONING
    assert isinstance(world.work.events[-1], WorkspaceCreated)


def test_when_work_cannot_be_queued_the_user_sees_why_and_can_retry() -> None:
    world = World(work_failures=1)
    workspace = world.workspaces.create(user_id=OWNER, name="w")
    assert workspace.is_err()
    assert workspace.error.kind is ProblemKind.UNAVAILABLE
    (stored,) = world.repository.workspaces.values()
    assert stored.status is WorkspaceStatus.ERROR
    assert world.workspaces.retry(user_id=OWNER, workspace_id=stored.id).is_ok()
