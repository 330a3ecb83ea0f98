"""DocumentLeases beside the in-memory repository."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapters.memory.repository import InMemoryStatusRepository
from domain.ports import DocumentLeases


class InMemoryDocumentLeases(DocumentLeases):
    def __init__(
        self, repository: InMemoryStatusRepository, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._lock = threading.Lock()
        self.leases: dict[int, tuple[str, float]] = {}

    def now(self) -> float:
        """The clock the leases are judged by."""
        return self._clock()

    def acquire(self, document_id: int, owner: str, seconds: float) -> bool:
        with self._lock:
            now = self._clock()
            held = self.leases.get(document_id)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self.leases[document_id] = (owner, now + seconds)
            return True

    def release(self, document_id: int, owner: str) -> None:
        with self._lock:
            held = self.leases.get(document_id)
            if held is not None and held[0] == owner:
                del self.leases[document_id]

    def expired(self, limit: int = 100) -> list[int]:
        with self._lock:
            now = self._clock()
            candidates = [doc for doc, (_, until) in self.leases.items() if until <= now]
        found = []
        for document_id in sorted(candidates):
            document = self._repository.get_document(document_id)
            if document and document.processing_status in self.RECOVERABLE:
                found.append(document_id)
        return found[:limit]
