"""The core flow through ``bootstrap`` on a real database: create, provision, upload, process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.bootstrap import Services, bootstrap
from adapters.sql.database import Database, migrate
from adapters.sql.records import chunks, users
from adapters.sql.repository import SqlStatusRepository
from domain.events import WORK_QUEUES
from domain.result import Err
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.integration.conftest import private_postgres_schema, sqlite_url_in

USER_ID = 77
TEXT = (
    b"Status tracking keeps every long-running operation visible. Each change is stored with "
    b"a new version and announced to the owner's browser, which converges to the database.\n"
) * 30


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url_in(tmp_path)  # migrates itself on first connect
        return
    with private_postgres_schema() as url:
        migrate(url)
        yield url


def settle_work(services: Services) -> list[str]:
    """Hand every queued work request to its handler, as workers would, until none is left."""
    broker = services.broker
    queues = {name: broker.work_queue(name, keys) for name, keys in WORK_QUEUES.items()}
    handled: list[str] = []
    try:
        idle = False
        while not idle:
            idle = True
            for name, queue in queues.items():
                delivery = queue.receive(timeout=0.2)
                if delivery is None:
                    continue
                idle = False
                services.handlers_for(name)[delivery.event.routing_key](delivery.event)
                delivery.ack()
                handled.append(delivery.event.routing_key)
                assert len(handled) < 50, f"work never settles: {handled}"
    finally:
        for queue in queues.values():
            queue.close()
    return handled


def test_a_document_is_processed_to_ready_in_the_database(
    database_url: str, tmp_path: Path
) -> None:
    services = bootstrap(
        {
            "DATABASE_URL": database_url,
            "STORAGE_DIR": str(tmp_path / "files"),
            "TRANSPORT": "memory",
        }
    )
    try:
        created = services.workspaces.create(user_id=USER_ID, name="Flow")
        assert not isinstance(created, Err), created
        workspace = created.value
        assert settle_work(services) == ["workspace.created"]
        uploaded = services.documents.upload(
            user_id=USER_ID, workspace_id=workspace.id, filename="notes.txt", content=[TEXT]
        )
        assert not isinstance(uploaded, Err), uploaded
        document = uploaded.value
        handled = settle_work(services)
        assert handled[0] == "document.uploaded"
    finally:
        services.close()

    database = Database.connect(database_url)
    try:
        repository = SqlStatusRepository(database.session_factory)
        stored_workspace = repository.get_workspace(workspace.id)
        stored = repository.get_document(document.id)
        assert stored_workspace is not None
        assert (stored_workspace.status, stored_workspace.version) == (WorkspaceStatus.READY, 2)
        assert stored is not None
        assert stored.processing_status is DocumentProcessingStatus.READY, stored.processing_error
        assert stored.processing_error is None
        assert stored.progress.is_complete
        # pending (1), at least one change per step, and ready.
        assert stored.version >= 1 + len(stored.progress.steps) + 1
        assert stored.chunk_count > 1
        with database.session_factory() as session:
            stored_chunks = session.scalar(
                select(func.count()).select_from(chunks).where(chunks.c.document_id == stored.id)
            )
            owners = session.scalars(select(users.c.id)).all()
        assert stored_chunks == stored.chunk_count
        assert list(owners) == [USER_ID]
        assert [d.id for d in repository.list_documents(user_id=USER_ID)] == [document.id]
    finally:
        database.close()
