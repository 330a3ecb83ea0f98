"""ChunkIndex in a dictionary."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from domain.entities import Chunk
from domain.ports.processing import ChunkIndex


class InMemoryChunkIndex(ChunkIndex):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stored: dict[int, tuple[Chunk, ...]] = {}

    def replace(self, document_id: int, chunks: Sequence[Chunk]) -> None:
        with self._lock:
            self.stored[document_id] = tuple(chunks)

    def count(self, document_id: int) -> int:
        with self._lock:
            return len(self.stored.get(document_id, ()))

    def chunks(self, document_id: int) -> list[Chunk]:
        with self._lock:
            return sorted(self.stored.get(document_id, ()), key=lambda c: c.position)
