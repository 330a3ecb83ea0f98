"""Cancelling documents and workspaces, and the status history the use cases keep — in memory."""

from __future__ import annotations

import threading
import time

from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.rag_configs import InMemoryRagConfigs
from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.storage import InMemoryFileStorage
from application.deadlines import checkpoint
from application.documents import CANCELLED, Documents
from application.handlers import ProvisionWorkspace, RunStage
from application.jobs import JobContext, JobRunner, JobStep
from application.pipeline import INGESTION
from application.status_service import StatusService
from application.workspaces import Workspaces
from domain.changes import DocumentStatusChange
from domain.entities import Document
from domain.events import DocumentUploaded, WorkspaceCreated
from domain.history import HistoryEntity
from domain.problems import Problem, ProblemKind
from domain.result import Result
from domain.status import DocumentProcessingStatus as D
from domain.status import WorkspaceStatus as W
from tests.fakes.messaging import RecordingPublisher

OWNER, STRANGER = 1, 2


class RacingRepository(InMemoryStatusRepository):
    """A worker reports a step between the cancel's read and its write, ``races`` times."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 0

    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        if change.status is D.FAILED and self.races > 0:
            self.races -= 1
            super().update_document_status(
                DocumentStatusChange(document_id=change.document_id, status=D.PROCESSING)
            ).unwrap()
        return super().update_document_status(change)


class World:
    def __init__(self) -> None:
        self.repository = RacingRepository()
        self.work = RecordingPublisher()
        self.storage = InMemoryFileStorage()
        self.status = StatusService(self.repository, None)
        self.workspaces = Workspaces(self.repository, self.status, self.work)
        self.documents = Documents(
            self.repository, self.status, self.storage, self.work, max_upload_bytes=10_000
        )

    def document(self) -> Document:
        workspace = self.workspaces.create(user_id=OWNER, name="w").unwrap()
        self.status.update_workspace_status(workspace.id, W.READY).unwrap()
        return self.documents.upload(
            user_id=OWNER, workspace_id=workspace.id, filename="a.txt", content=[b"some text"]
        ).unwrap()


def test_a_pending_document_is_cancelled_at_once() -> None:
    world = World()
    document = world.document()
    cancelled = world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    assert (cancelled.processing_status, cancelled.processing_error) == (D.FAILED, CANCELLED)
    assert cancelled.metadata["cancelled"] is True
    assert world.repository.get_document(document.id) == cancelled
    last = world.repository.history(HistoryEntity.DOCUMENT, document.id, limit=10)[-1]
    assert (last.from_status, last.to_status, last.actor, last.error) == (
        "pending",
        "failed",
        "user",
        CANCELLED,
    )


def test_a_processing_document_is_cancelled_with_its_running_step_failed() -> None:
    world = World()
    document = world.document()
    world.status.change_document_status(
        DocumentStatusChange(
            document_id=document.id,
            status=D.PROCESSING,
            progress=document.progress.begin("Parsing"),
        )
    ).unwrap()
    cancelled = world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    assert cancelled.processing_status is D.FAILED
    assert cancelled.progress.current is None
    assert next(s.state.value for s in cancelled.progress.steps) == "failed"
    last = world.repository.history(HistoryEntity.DOCUMENT, document.id, limit=10)[-1]
    assert (last.from_status, last.step) == ("processing", "Parsing")


def test_a_cancel_racing_the_workers_writes_reads_again_and_wins() -> None:
    world = World()
    document = world.document()
    world.repository.races = 2
    cancelled = world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    assert cancelled.processing_status is D.FAILED
    assert cancelled.version == document.version + 3


def test_a_finished_document_or_workspace_cannot_be_cancelled() -> None:
    world = World()
    document = world.document()
    world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    again = world.documents.cancel(user_id=OWNER, document_id=document.id)
    assert again.error.kind is ProblemKind.CONFLICT
    assert "failed" in again.error.message
    workspace = world.repository.get_workspace(document.workspace_id)
    assert workspace is not None
    assert workspace.status is W.READY
    refused = world.workspaces.cancel(user_id=OWNER, workspace_id=workspace.id)
    assert refused.error.kind is ProblemKind.CONFLICT
    assert world.repository.get_workspace(workspace.id) == workspace


def test_someone_elses_document_or_workspace_is_not_found() -> None:
    world = World()
    document = world.document()
    refused = world.documents.cancel(user_id=STRANGER, document_id=document.id)
    assert refused.error.kind is ProblemKind.NOT_FOUND
    assert world.repository.get_document(document.id) == document
    assert world.workspaces.cancel(
        user_id=STRANGER, workspace_id=document.workspace_id
    ).error.kind is (ProblemKind.NOT_FOUND)
    assert (
        world.documents.history(user_id=STRANGER, document_id=document.id, limit=5).error.kind
        is ProblemKind.NOT_FOUND
    )
    assert (
        world.workspaces.history(
            user_id=STRANGER, workspace_id=document.workspace_id, limit=5
        ).error.kind
        is ProblemKind.NOT_FOUND
    )
    # The operator (no user) may cancel anyone's.
    by_operator = world.documents.cancel(user_id=None, document_id=document.id, actor="operator")
    assert by_operator.unwrap().processing_status is D.FAILED


def test_a_cancelled_document_can_be_retried_and_is_no_longer_cancelled() -> None:
    world = World()
    document = world.document()
    world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    retried = world.documents.retry(user_id=OWNER, document_id=document.id).unwrap()
    assert retried.processing_status is D.PENDING
    assert "cancelled" not in retried.metadata
    assert isinstance(world.work.events[-1], DocumentUploaded)
    history = world.documents.history(user_id=OWNER, document_id=document.id, limit=10).unwrap()
    assert [e.to_status for e in history] == ["pending", "failed", "pending"]


def test_a_cancelled_workspace_stays_in_error_whatever_provisioning_does() -> None:
    world = World()
    workspace = world.workspaces.create(user_id=OWNER, name="w").unwrap()
    cancelled = world.workspaces.cancel(user_id=OWNER, workspace_id=workspace.id).unwrap()
    assert (cancelled.status, cancelled.status_message) == (W.ERROR, CANCELLED)
    (request,) = [e for e in world.work.events if isinstance(e, WorkspaceCreated)]
    ProvisionWorkspace(world.status, InMemoryRagConfigs(), world.storage)(request)
    assert world.repository.get_workspace(workspace.id) == cancelled
    retried = world.workspaces.retry(user_id=OWNER, workspace_id=workspace.id).unwrap()
    assert retried.status is W.PROVISIONING


def test_a_worker_stops_a_step_once_its_document_is_cancelled_and_hands_nothing_on() -> None:
    world = World()
    document = world.document()
    leases = InMemoryDocumentLeases(world.repository)
    runner = JobRunner(world.status, actor="worker-1")
    began = threading.Event()

    def long_step(context: JobContext) -> None:
        began.set()
        while True:  # a long step that checks its token, as the pipeline's loops do
            checkpoint()
            time.sleep(0.01)

    hand_off = RecordingPublisher()
    handler = RunStage(
        INGESTION,
        runner,
        lambda stage: [JobStep(label, long_step) for label in stage.labels],
        hand_off,
        leases,
        owner="worker-1",
        lease_seconds=30,
        cancel_poll_seconds=0.05,
    )
    (request,) = [e for e in world.work.events if isinstance(e, DocumentUploaded)]
    worker = threading.Thread(target=handler, args=(request,))
    worker.start()
    assert began.wait(5)
    asked = time.monotonic()
    cancelled = world.documents.cancel(user_id=OWNER, document_id=document.id).unwrap()
    worker.join(5)
    stopped_after = time.monotonic() - asked
    assert not worker.is_alive()
    assert stopped_after < 1.0
    assert world.repository.get_document(document.id) == cancelled  # no write after the cancel
    assert hand_off.events == []
    assert leases.acquire(document.id, "someone else", 30)  # the lease was released
    # A redelivery of the same request leaves the cancelled document alone.
    handler(request)
    assert world.repository.get_document(document.id) == cancelled
    history = world.repository.history(HistoryEntity.DOCUMENT, document.id, limit=10)
    assert [(e.to_status, e.actor) for e in history] == [
        ("pending", None),
        ("processing", "worker-1"),
        ("failed", "user"),
    ]
