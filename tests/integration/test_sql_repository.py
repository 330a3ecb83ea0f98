"""The SQL repository beyond the contract: the seed's session usage, users, the outbox,
atomic chunk replacement, and concurrent writers on one document."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.memory.broker import InMemoryBroker
from adapters.sql.chunks import SqlChunkIndex
from adapters.sql.database import Database
from adapters.sql.records import (
    DocumentRecord,
    UserRecord,
    WorkspaceRecord,
    outbox,
    users,
)
from adapters.sql.repository import SqlStatusRepository
from application.status_service import StatusService
from domain.entities import Chunk, Document, Workspace
from domain.events import StatusEvent, decode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.contracts.repository import changed_document, changed_workspace, refused_document


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def create_test_document(db: Session, status: str = "pending") -> DocumentRecord:
    """A document row written the way any SQLAlchemy code would write one."""
    now = datetime.now(UTC)
    db.merge(UserRecord(id=42, created_at=now))
    workspace = WorkspaceRecord(
        user_id=42, name="seed", status="ready", created_at=now, updated_at=now
    )
    db.add(workspace)
    db.flush()
    document = DocumentRecord(
        user_id=42,
        workspace_id=workspace.id,
        filename="paper.pdf",
        storage_key=f"{workspace.id}/paper.pdf",
        processing_status=status,
        created_at=now,
        updated_at=now,
    )
    db.add(document)
    db.commit()
    return document


def test_worker_updates_status(db: Session) -> None:
    broker = InMemoryBroker()
    heard: list[StatusEvent] = []
    subscription = broker.subscribe_status(heard.append)
    repo = SqlStatusRepository(db)
    service = StatusService(repo, broker.publisher())

    doc = create_test_document(db, status="pending")

    result = service.update_document_status(
        document_id=doc.id, status=DocumentProcessingStatus.PROCESSING
    )

    assert result.is_ok()
    db.refresh(doc)
    assert doc.processing_status == "processing"
    assert doc.version == 2
    wait_for(lambda: bool(heard), 5, "the status event")
    event = heard[0].to_message()
    assert heard[0].routing_key == "document.status.updated"
    assert event["document_id"] == doc.id
    assert (event["status"], event["version"], event["user_id"]) == ("processing", 2, 42)
    subscription.close()


def test_missing_and_illegal_updates_leave_the_session_usable(db: Session) -> None:
    service = StatusService(SqlStatusRepository(db), None)
    doc = create_test_document(db, status="ready")
    missing = service.update_document_status(document_id=doc.id + 1000, status="processing")
    assert missing.is_err()
    assert "not found" in missing.error
    illegal = service.update_document_status(document_id=doc.id, status="processing")
    assert illegal.is_err()
    assert "illegal transition" in illegal.error
    db.refresh(doc)
    assert (doc.processing_status, doc.version) == ("ready", 1)
    retried = service.update_document_status(document_id=doc.id, status="pending", retry=True)
    assert retried.is_ok()


def test_a_workspace_creates_its_owners_user_row_once(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    repository.add_workspace(user_id=501, name="first")
    repository.add_workspace(user_id=501, name="second")
    repository.add_workspace(user_id=502, name="other")
    with database.session_factory() as session:
        ids = session.scalars(select(users.c.id).order_by(users.c.id)).all()
    assert list(ids) == [501, 502]


def outbox_rows(database: Database) -> list[dict[str, object]]:
    with database.session_factory() as session:
        rows = session.execute(select(outbox).order_by(outbox.c.id)).all()
    return [dict(row._mapping) for row in rows]


def test_with_outbox_every_change_writes_its_event_in_the_same_transaction(
    database: Database,
) -> None:
    repository = SqlStatusRepository(database.session_factory, outbox=True)
    workspace = repository.add_workspace(user_id=9, name="w")
    ready = changed_workspace(repository, workspace.id, WorkspaceStatus.READY)
    document = repository.add_document(
        user_id=9,
        workspace_id=workspace.id,
        filename="a.txt",
        storage_key="k",
        progress=Progress.plan(["Parsing"]),
    )
    processing = changed_document(
        repository, document.id, DocumentProcessingStatus.PROCESSING, chunk_count=3
    )
    refused_document(repository, document.id, DocumentProcessingStatus.PENDING)

    rows = outbox_rows(database)
    expected: list[Workspace | Document] = [workspace, ready, document, processing]
    assert [(r["entity_type"], r["entity_id"], r["version"]) for r in rows] == [
        ("workspace", workspace.id, 1),
        ("workspace", workspace.id, 2),
        ("document", document.id, 1),
        ("document", document.id, 2),
    ], "a rejected change writes no event"
    for row, entity in zip(rows, expected, strict=True):
        event = decode(str(row["body"]))
        assert event.event_id == row["event_id"]
        assert event.routing_key == row["routing_key"]
        message = event.to_message()
        assert message["version"] == entity.version
        assert row["sent_at"] is None
    assert decode(str(rows[3]["body"])).to_message()["chunk_count"] == 3


class FailingAfterTheEvent(SqlStatusRepository):
    """Fails once the change and its outbox event are both written, before the commit."""

    def _record_event(self, session: Session, entity: Document | Workspace, now: datetime) -> None:
        super()._record_event(session, entity, now)
        raise RuntimeError("crash between the writes and the commit")


def test_the_change_and_its_outbox_event_roll_back_together(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory, outbox=True)
    workspace = repository.add_workspace(user_id=9, name="w")
    failing = FailingAfterTheEvent(database.session_factory, outbox=True)
    with pytest.raises(RuntimeError, match="crash"):
        changed_workspace(failing, workspace.id, WorkspaceStatus.READY)
    with pytest.raises(RuntimeError, match="crash"):
        failing.add_workspace(user_id=9, name="never stored")
    assert repository.get_workspace(workspace.id) == workspace
    assert repository.list_workspaces(user_id=9) == [workspace]
    assert [r["version"] for r in outbox_rows(database)] == [1]


def test_without_outbox_nothing_is_written_there(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    workspace = repository.add_workspace(user_id=3, name="w")
    changed_workspace(repository, workspace.id, WorkspaceStatus.READY)
    assert outbox_rows(database) == []


def test_a_failed_chunk_replacement_keeps_the_previous_chunks(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    workspace = repository.add_workspace(user_id=1, name="w")
    document = repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a.txt", storage_key="k", progress=Progress()
    )
    index = SqlChunkIndex(database.session_factory)
    kept = [Chunk(document.id, n, f"t{n}", (float(n),)) for n in range(3)]
    index.replace(document.id, kept)
    clashing = [Chunk(document.id, 0, "x", (0.0,)), Chunk(document.id, 0, "y", (1.0,))]
    with pytest.raises(IntegrityError):
        index.replace(document.id, clashing)
    assert index.chunks(document.id) == kept


def test_chunks_go_with_their_document(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    workspace = repository.add_workspace(user_id=1, name="w")
    document = repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a.txt", storage_key="k", progress=Progress()
    )
    index = SqlChunkIndex(database.session_factory)
    index.replace(document.id, [Chunk(document.id, 0, "t", (1.0,))])
    with database.session_factory() as session, session.begin():
        session.delete(session.get_one(DocumentRecord, document.id))
    with database.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DocumentRecord)) == 0
    assert index.count(document.id) == 0


LEGAL_WRITERS = 24
ILLEGAL_WRITERS = 8


def test_concurrent_writers_never_skip_repeat_or_slip_an_illegal_move(
    database: Database,
) -> None:
    repository = SqlStatusRepository(database.session_factory)
    workspace = repository.add_workspace(user_id=1, name="w")
    document = repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a.txt", storage_key="k", progress=Progress()
    )
    start = threading.Barrier(LEGAL_WRITERS + ILLEGAL_WRITERS)
    versions: list[int] = []
    rejections: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(legal: bool, retry: bool) -> None:
        # Each writer has its own repository on its own session, as separate workers would.
        with database.session_factory() as session:
            mine = SqlStatusRepository(session)
            start.wait()
            try:
                if legal:
                    moved = changed_document(mine, document.id, DocumentProcessingStatus.PROCESSING)
                    with lock:
                        versions.append(moved.version)
                else:
                    # Back to pending is illegal from pending or processing, retry or not.
                    refused = refused_document(
                        mine, document.id, DocumentProcessingStatus.PENDING, retry=retry
                    )
                    with lock:
                        rejections.append(refused.message)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

    writers = [threading.Thread(target=write, args=(True, False)) for _ in range(LEGAL_WRITERS)]
    writers += [
        threading.Thread(target=write, args=(False, n % 2 == 0)) for n in range(ILLEGAL_WRITERS)
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(versions) == list(range(2, LEGAL_WRITERS + 2))
    assert len(rejections) == ILLEGAL_WRITERS
    assert all("illegal transition" in reason for reason in rejections)
    stored = repository.get_document(document.id)
    assert stored is not None
    assert (stored.processing_status, stored.version) == (
        DocumentProcessingStatus.PROCESSING,
        LEGAL_WRITERS + 1,
    )
