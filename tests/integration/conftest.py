"""Database fixtures: a fresh SQLite file, or a private PostgreSQL schema, per test.

Other test runs share the PostgreSQL server, so every test gets a schema of its own (named
``t_<random>``, reached through ``search_path`` in the URL) that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from adapters.rabbitmq import RabbitMQPublisher
from adapters.sql.database import Database, migrate
from tests.support.rabbitmq import RABBITMQ_URL, StatusQueue, delete_topology

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


@contextmanager
def private_postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections work in a new, empty schema, dropped on exit."""
    schema = f"t_{uuid.uuid4().hex[:20]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def migrated_postgres() -> Iterator[Database]:
    """A ``Database`` on a private, migrated PostgreSQL schema."""
    with private_postgres_schema() as url:
        migrate(url)
        database = Database.connect(url)
        try:
            yield database
        finally:
            database.close()


def sqlite_url_in(directory: Path) -> str:
    return f"sqlite:///{directory / 'insighthub.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty private PostgreSQL schema."""
    with private_postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_url_in(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database on each engine."""
    if request.param == "sqlite":
        sqlite = Database.connect(sqlite_url_in(tmp_path))
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    with migrated_postgres() as postgres:
        yield postgres


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A plain session, as the seed's examples use one."""
    session = database.session_factory()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def exchange() -> Iterator[str]:
    """A private RabbitMQ exchange, deleted with everything bound to it afterwards."""
    name = f"test-seed-{uuid.uuid4().hex}"
    yield name
    delete_topology(name)


@pytest.fixture
def rabbitmq(exchange: str) -> Iterator[StatusQueue]:
    queue = StatusQueue(exchange, "document.status.updated", "workspace.status.updated")
    yield queue
    queue.close()


@pytest.fixture
def publisher(exchange: str) -> Iterator[RabbitMQPublisher]:
    publisher = RabbitMQPublisher(rabbitmq_url=RABBITMQ_URL, exchange=exchange)
    yield publisher
    publisher.close()
