"""The persistence contracts, in memory."""

from __future__ import annotations

import pytest

from adapters.memory.chunks import InMemoryChunkIndex
from adapters.memory.rag_configs import InMemoryRagConfigs
from adapters.memory.repository import InMemoryStatusRepository
from domain.ports import RagConfigs, StatusRepository
from domain.ports.processing import ChunkIndex
from tests.contracts.repository import (
    ChunkIndexContract,
    RagConfigsContract,
    StatusRepositoryContract,
)


class InMemory:
    @pytest.fixture
    def repository(self) -> StatusRepository:
        return InMemoryStatusRepository()


class TestInMemoryStatusRepository(InMemory, StatusRepositoryContract):
    pass


class TestInMemoryRagConfigs(InMemory, RagConfigsContract):
    @pytest.fixture
    def rag_configs(self) -> RagConfigs:
        return InMemoryRagConfigs()


class TestInMemoryChunkIndex(InMemory, ChunkIndexContract):
    @pytest.fixture
    def chunk_index(self) -> ChunkIndex:
        return InMemoryChunkIndex()
