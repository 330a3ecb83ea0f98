"""The outbox on SQLite and PostgreSQL: nothing skipped, entity order, several relays at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from adapters.container import build_container, close_container
from adapters.sql.database import Database, migrate
from adapters.sql.outbox import SqlOutbox
from adapters.sql.records import outbox
from adapters.sql.repository import SqlStatusRepository
from application.relay import OutboxRelay
from application.status_service import StatusService
from domain.errors import PublishFailed
from domain.events import DocumentStatusUpdated, Event, WorkspaceStatusUpdated, decode, encode
from domain.ports.outbox import OutboxEntry
from domain.progress import Progress
from tests.fakes.messaging import FlakyPublisher, RecordingPublisher
from tests.integration.conftest import private_postgres_schema, sqlite_url_in
from tests.support.proxy import TcpProxy

USER_ID = 4242


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        sqlite = Database.connect(sqlite_url_in(tmp_path), outbox=True)
        yield sqlite
        sqlite.close()
        return
    with private_postgres_schema() as url:
        migrate(url)
        postgres = Database.connect(url, outbox=True)
        yield postgres
        postgres.close()


@pytest.fixture
def postgres() -> Iterator[Database]:
    with private_postgres_schema() as url:
        migrate(url)
        database = Database.connect(url, outbox=True)
        yield database
        database.close()


def service_on(database: Database) -> StatusService:
    return StatusService(SqlStatusRepository(database.session_factory, outbox=True), None)


def new_documents(service: StatusService, count: int) -> list[int]:
    workspace = service.repository.add_workspace(user_id=USER_ID, name="w")
    return [
        service.repository.add_document(
            user_id=USER_ID,
            workspace_id=workspace.id,
            filename=f"d{n}",
            storage_key="k",
            progress=Progress(),
        ).id
        for n in range(count)
    ]


def versions_by_document(events: Sequence[Event]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for event in events:
        if isinstance(event, DocumentStatusUpdated):
            seen.setdefault(event.document_id, []).append(event.version)
    return seen


def relay_all(relay: OutboxRelay) -> None:
    while relay.relay_once():
        pass


def test_every_change_is_published_once_in_order_and_marked_sent(database: Database) -> None:
    service = service_on(database)
    ids = new_documents(service, 3)
    for _ in range(4):
        for document_id in ids:
            service.update_document_status(document_id, "processing").unwrap()
    outbox_ = SqlOutbox(database)
    publisher = RecordingPublisher()
    relay_all(OutboxRelay(outbox_, publisher, batch_size=5))
    assert versions_by_document(publisher.events) == {i: [1, 2, 3, 4, 5] for i in ids}
    assert len(publisher.events) == 1 + 3 * 5  # the workspace's creation, then the documents'
    assert outbox_.unsent() == 0
    outbox_.close()


def test_a_failed_publish_marks_nothing_and_the_entries_come_again(database: Database) -> None:
    service = service_on(database)
    new_documents(service, 1)
    outbox_ = SqlOutbox(database)
    publisher = FlakyPublisher(failures=1)
    relay = OutboxRelay(outbox_, publisher, batch_size=10)
    assert relay.relay_once() == 0
    assert outbox_.unsent() == 2
    assert relay.relay_once() == 2
    assert outbox_.unsent() == 0
    assert [type(e).__name__ for e in publisher.events] == [
        "WorkspaceStatusUpdated",
        "DocumentStatusUpdated",
    ]
    outbox_.close()


def test_a_crash_after_publishing_publishes_again_and_loses_nothing(database: Database) -> None:
    service = service_on(database)
    new_documents(service, 2)
    outbox_ = SqlOutbox(database)
    published: list[OutboxEntry] = []

    def publish_then_die(entries: Sequence[OutboxEntry]) -> None:
        published.extend(entries)
        raise PublishFailed("the link dropped before the batch was marked sent")

    with pytest.raises(PublishFailed):
        outbox_.relay(publish_then_die, limit=10)
    again = RecordingPublisher()
    relay_all(OutboxRelay(outbox_, again))
    assert [e.event_id for e in again.events] == [e.event_id for e in published]
    outbox_.close()


def test_sent_rows_are_pruned_and_unsent_ones_kept(database: Database) -> None:
    service = service_on(database)
    new_documents(service, 2)
    outbox_ = SqlOutbox(database)
    outbox_.relay(lambda entries: None, limit=2)
    with database.session_factory() as session, session.begin():
        session.execute(
            update(outbox)
            .where(outbox.c.sent_at.is_not(None))
            .values(sent_at=datetime.now(UTC) - timedelta(hours=2))
        )
    assert outbox_.prune(older_than_seconds=3600) == 2
    assert outbox_.prune(older_than_seconds=3600) == 0
    assert outbox_.unsent() == 1
    outbox_.close()


@pytest.mark.postgres
def test_a_row_that_commits_late_with_an_earlier_id_is_never_skipped(postgres: Database) -> None:
    service = service_on(postgres)
    (document_id,) = new_documents(service, 1)
    outbox_ = SqlOutbox(postgres)
    publisher = RecordingPublisher()
    relay = OutboxRelay(outbox_, publisher)
    relay_all(relay)
    document = service.repository.get_document(document_id)
    assert document is not None
    late_event = DocumentStatusUpdated.of(document)
    late = postgres.session_factory()
    try:
        late.begin()
        late_id = late.execute(
            insert(outbox)
            .values(
                event_id=late_event.event_id,
                routing_key=late_event.routing_key,
                body=encode(late_event).decode(),
                entity_type="document",
                entity_id=document_id,
                version=document.version,
                created_at=datetime.now(UTC),
            )
            .returning(outbox.c.id)
        ).scalar_one()
        service.repository.add_workspace(user_id=USER_ID, name="committed first")
        relay_all(relay)
        with postgres.session_factory() as session:
            newest = session.execute(select(outbox.c.id).order_by(outbox.c.id.desc())).first()
        assert newest is not None
        assert newest.id > late_id  # a later id was published while the earlier one was open
        assert late_event.event_id not in {e.event_id for e in publisher.events}
        late.commit()
    finally:
        late.close()
    relay_all(relay)
    assert publisher.events[-1].event_id == late_event.event_id
    assert outbox_.unsent() == 0
    outbox_.close()


@pytest.mark.postgres
def test_an_entity_held_by_one_relay_is_not_published_ahead_by_another(postgres: Database) -> None:
    service = service_on(postgres)
    first, second = new_documents(service, 2)
    relay_all(OutboxRelay(SqlOutbox(postgres), RecordingPublisher()))
    service.update_document_status(first, "processing").unwrap()
    service.update_document_status(second, "processing").unwrap()
    service.update_document_status(first, "ready").unwrap()
    holding = threading.Event()
    release = threading.Event()
    held: list[OutboxEntry] = []

    def slow_publish(entries: Sequence[OutboxEntry]) -> None:
        held.extend(entries)
        holding.set()
        release.wait(30)

    one, two = SqlOutbox(postgres), SqlOutbox(postgres)
    thread = threading.Thread(target=one.relay, args=(slow_publish,), kwargs={"limit": 1})
    thread.start()
    assert holding.wait(30)
    got: list[OutboxEntry] = []
    two.relay(got.extend, limit=10)
    release.set()
    thread.join(30)
    held_event = decode(held[0].body)
    assert isinstance(held_event, DocumentStatusUpdated)
    assert held_event.document_id == first
    # The second relay skipped the held row and the first document's later one, took the rest.
    taken = [decode(entry.body) for entry in got]
    assert [(e.document_id, e.version) for e in taken if isinstance(e, DocumentStatusUpdated)] == [
        (second, 2)
    ]
    rest: list[OutboxEntry] = []
    two.relay(rest.extend, limit=10)
    last = decode(rest[0].body)
    assert isinstance(last, DocumentStatusUpdated)
    assert (last.document_id, last.version) == (
        first,
        3,
    )
    one.close()
    two.close()


@pytest.mark.postgres
def test_several_relays_at_once_publish_each_event_once_in_entity_order(
    postgres: Database,
) -> None:
    service = service_on(postgres)
    ids = new_documents(service, 6)
    published: list[Event] = []
    lock = threading.Lock()

    class SharedRecorder(RecordingPublisher):
        def publish(self, event: Event) -> None:
            with lock:
                published.append(event)
            time.sleep(0.001)

    stop = threading.Event()
    outboxes = [SqlOutbox(postgres) for _ in range(4)]
    relays = [OutboxRelay(o, SharedRecorder(), batch_size=7, idle_wait=0.2) for o in outboxes]
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in relays]
    for thread in threads:
        thread.start()
    writers = [
        threading.Thread(
            target=lambda d=document_id: [
                service.update_document_status(d, "processing").unwrap() for _ in range(15)
            ]
        )
        for document_id in ids
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    expected = 1 + len(ids) * 16
    deadline = time.monotonic() + 60
    while len(published) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(published) == expected
    assert len({e.event_id for e in published}) == expected
    assert versions_by_document(published) == {i: list(range(1, 17)) for i in ids}
    assert sum(r.published for r in relays) == expected
    assert sum(1 for r in relays if r.published) > 1, "the work was not shared between relays"
    for outbox_ in outboxes:
        outbox_.close()


@pytest.mark.postgres
def test_a_commit_in_another_process_wakes_a_waiting_relay(postgres: Database) -> None:
    outbox_ = SqlOutbox(postgres, poll_seconds=60)
    outbox_.wait(0.01)  # opens the listening connection
    writer = Database.connect(postgres.engine.url.render_as_string(hide_password=False))
    woke = threading.Event()

    def waiting() -> None:
        outbox_.wait(60)
        woke.set()

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(0.2)
    assert not woke.is_set()
    SqlStatusRepository(writer.session_factory, outbox=True).add_workspace(user_id=1, name="n")
    assert woke.wait(20), "the NOTIFY of the committed insert did not wake the relay"
    thread.join()
    writer.close()
    outbox_.close()


@pytest.mark.postgres
def test_the_relay_rides_out_an_unreachable_database_and_catches_up(postgres: Database) -> None:
    url = postgres.engine.url
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = Database.connect(
            url.set(port=proxy.port).render_as_string(hide_password=False), outbox=True
        )
        service = service_on(postgres)
        new_documents(service, 2)
        outbox_ = SqlOutbox(proxied, poll_seconds=0.05)
        publisher = RecordingPublisher()
        relay = OutboxRelay(outbox_, publisher)
        proxy.cut()
        assert relay.relay_once() == 0  # no exception: the relay keeps running
        outbox_.wait(0.1)
        new_documents(service, 1)
        proxy.restore()
        deadline = time.monotonic() + 30
        while len(publisher.events) < 5 and time.monotonic() < deadline:
            if relay.relay_once() == 0:
                outbox_.wait(0.2)
        assert len(publisher.events) == 5
        outbox_.close()
        proxied.close()


def test_the_container_relays_the_outbox_of_a_sql_database(tmp_path: Path) -> None:
    container, _ = build_container(
        {
            "DATABASE_URL": sqlite_url_in(tmp_path),
            "DELIVERY": "outbox",
            "STORAGE_DIR": str(tmp_path / "files"),
        }
    )
    try:
        assert isinstance(container.outbox(), SqlOutbox)
        created = container.workspaces().create(user_id=USER_ID, name="via the outbox")
        assert created.is_ok()
        received: list[Event] = []
        container.broker().subscribe_status(received.append)
        relay = container.relay()
        relay_all(relay)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)  # the in-memory broadcast calls back on its own thread
        announced = [e for e in received if isinstance(e, WorkspaceStatusUpdated)]
        assert [(e.workspace_id, e.version) for e in announced] == [(created.unwrap().id, 1)]
        assert container.outbox().unsent() == 0  # type: ignore[attr-defined]
    finally:
        close_container(container)
