"""The persistence contracts on SQLite and on the PostgreSQL server.

Every test gets a fresh SQLite file or a private PostgreSQL schema, migrated to head. The
SQLite repository runs on a caller's ``Session`` (the seed's ``SqlStatusRepository(db)``),
the PostgreSQL one on a session factory (as servers and workers use it), so both ways of
building the repository keep the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sql.chunks import SqlChunkIndex
from adapters.sql.database import Database
from adapters.sql.rag_configs import SqlRagConfigs
from adapters.sql.repository import SqlStatusRepository
from domain.ports import RagConfigs, StatusRepository
from domain.ports.processing import ChunkIndex
from tests.contracts.repository import (
    ChunkIndexContract,
    RagConfigsContract,
    StatusRepositoryContract,
)
from tests.integration.conftest import migrated_postgres, sqlite_url_in


class OnSqlite:
    @pytest.fixture
    def database(self, tmp_path: Path) -> Iterator[Database]:
        database = Database.connect(sqlite_url_in(tmp_path))
        yield database
        database.close()

    @pytest.fixture
    def repository(self, database: Database) -> Iterator[StatusRepository]:
        with database.session_factory() as session:
            yield SqlStatusRepository(session)


@pytest.mark.postgres
class OnPostgres:
    @pytest.fixture
    def database(self) -> Iterator[Database]:
        with migrated_postgres() as database:
            yield database

    @pytest.fixture
    def repository(self, database: Database) -> StatusRepository:
        return SqlStatusRepository(database.session_factory)


class SqlRagConfigsFixture:
    @pytest.fixture
    def rag_configs(self, database: Database) -> RagConfigs:
        return SqlRagConfigs(database.session_factory)


class SqlChunkIndexFixture:
    @pytest.fixture
    def chunk_index(self, database: Database) -> ChunkIndex:
        return SqlChunkIndex(database.session_factory)


class TestSqliteStatusRepository(OnSqlite, StatusRepositoryContract):
    pass


class TestPostgresStatusRepository(OnPostgres, StatusRepositoryContract):
    pass


class TestSqliteRagConfigs(OnSqlite, SqlRagConfigsFixture, RagConfigsContract):
    pass


class TestPostgresRagConfigs(OnPostgres, SqlRagConfigsFixture, RagConfigsContract):
    pass


class TestSqliteChunkIndex(OnSqlite, SqlChunkIndexFixture, ChunkIndexContract):
    pass


class TestPostgresChunkIndex(OnPostgres, SqlChunkIndexFixture, ChunkIndexContract):
    pass
