"""The change cursor on SQLite and PostgreSQL: one position per change, in commit order."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.sql.database import Database
from adapters.sql.records import WorkspaceRecord, outbox
from adapters.sql.repository import SqlStatusRepository
from application.status_service import StatusService
from domain.entities import Document, Workspace
from domain.events import decode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus
from tests.fakes.messaging import RecordingPublisher
from tests.integration.conftest import migrated_postgres, sqlite_url_in


def outbox_positions(database: Database) -> list[int]:
    """The position of every event in the outbox, in the order the rows were written."""
    with database.engine.connect() as connection:
        bodies = connection.execute(select(outbox.c.body).order_by(outbox.c.id)).scalars()
        return [int(decode(body).to_message()["position"]) for body in bodies]


def test_direct_and_outbox_events_carry_the_stored_position(database: Database) -> None:
    publisher = RecordingPublisher()
    direct = StatusService(SqlStatusRepository(database.session_factory), publisher)
    recorded = StatusService(SqlStatusRepository(database.session_factory, outbox=True), None)
    workspace = recorded.repository.add_workspace(user_id=5, name="w")
    document = recorded.repository.add_document(
        user_id=5, workspace_id=workspace.id, filename="a", storage_key="k", progress=Progress()
    )
    through_outbox = recorded.update_document_status(document.id, "processing").unwrap()
    sent_directly = direct.update_document_status(document.id, "ready").unwrap()
    stored = direct.repository.get_document(document.id)
    assert stored is not None
    assert stored.position == sent_directly.position
    assert [e.to_message()["position"] for e in publisher.events] == [sent_directly.position]
    assert outbox_positions(database) == [
        workspace.position,
        document.position,
        through_outbox.position,
    ]
    assert sent_directly.position > through_outbox.position > document.position


def test_a_record_added_through_the_session_takes_a_position(db: Session) -> None:
    repository = SqlStatusRepository(db)
    before = repository.add_workspace(user_id=1, name="a")
    record = WorkspaceRecord(
        user_id=1, name="b", created_at=before.created_at, updated_at=before.updated_at
    )
    db.add(record)
    db.commit()
    after = repository.add_workspace(user_id=1, name="c")
    assert before.position < record.position < after.position


def test_each_database_has_its_own_epoch_kept_across_connections(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Database.connect(sqlite_url_in(tmp_path / "a"))
    second = Database.connect(sqlite_url_in(tmp_path / "b"))
    epochs = [SqlStatusRepository(d.session_factory).epoch() for d in (first, second)]
    first.close()
    second.close()
    again = Database.connect(sqlite_url_in(tmp_path / "a"))
    with again.session_factory() as session:
        reopened = SqlStatusRepository(session).epoch()
    again.close()
    assert epochs[0] != epochs[1]
    assert reopened == epochs[0]


WRITERS = 8
CHANGES_PER_WRITER = 15


class SlowToCommit(SqlStatusRepository):
    """Lingers between writing a change (and its outbox event) and committing it."""

    def _record_event(self, executor: Any, entity: Document | Workspace, now: datetime) -> None:
        super()._record_event(executor, entity, now)
        time.sleep(random.uniform(0, 0.004))


@pytest.fixture
def postgres() -> Iterator[Database]:
    with migrated_postgres() as database:
        yield database


@pytest.mark.postgres
def test_concurrent_changes_commit_in_position_order(postgres: Database) -> None:
    """A reader that has seen position P has already seen every position below P.

    Writers on separate connections change their own documents while a reader keeps taking
    the set of committed positions (from the outbox, which keeps one row per change). Were
    positions handed out ahead of commit order (a bare sequence), some snapshot would hold a
    position while missing a lower one that committed later: a resume after it would miss it.
    """
    repository = SlowToCommit(postgres.session_factory, outbox=True)
    workspace = repository.add_workspace(user_id=1, name="w")
    documents = [
        repository.add_document(
            user_id=1,
            workspace_id=workspace.id,
            filename=f"{n}",
            storage_key="k",
            progress=Progress(),
        )
        for n in range(WRITERS)
    ]
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()
    returned: list[int] = []
    snapshots: list[list[int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(document_id: int) -> None:
        try:
            start.wait()
            for _ in range(CHANGES_PER_WRITER):
                moved = repository.update_document_status(
                    document_id, DocumentProcessingStatus.PROCESSING
                )
                assert moved is not None
                with lock:
                    returned.append(moved.position)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    def read() -> None:
        start.wait()
        while not done.is_set():
            snapshots.append(outbox_positions(postgres))

    writers = [threading.Thread(target=write, args=(d.id,)) for d in documents]
    reader = threading.Thread(target=read)
    for thread in [*writers, reader]:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    reader.join(timeout=30)
    assert errors == []
    final = sorted(outbox_positions(postgres))
    assert len(returned) == WRITERS * CHANGES_PER_WRITER
    assert len(set(returned)) == len(returned), "no position is handed out twice"
    assert set(returned) <= set(final)
    assert len(snapshots) > 10, "the reader saw the writes under way"
    for snapshot in snapshots:
        highest = max(snapshot)
        assert sorted(snapshot) == [p for p in final if p <= highest], (
            "a snapshot misses a lower position that committed later"
        )
