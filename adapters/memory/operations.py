"""The operator's views in process: worker heartbeats, the operator log, and stuck work."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.repository import InMemoryStatusRepository
from domain.events import utc_now
from domain.ports import (
    OperatorAction,
    OperatorLog,
    StuckDocument,
    StuckWork,
    WorkerBeat,
    WorkerRegistry,
)
from domain.status import DocumentProcessingStatus

MAX_KEPT_ACTIONS = 1000


class InMemoryWorkerRegistry(WorkerRegistry):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, tuple[float, WorkerBeat]] = {}

    def beat(self, beat: WorkerBeat) -> None:
        with self._lock:
            self._beats[beat.worker_id] = (self._clock(), replace(beat, seen_at=utc_now()))

    def live(self, within_seconds: float) -> list[WorkerBeat]:
        oldest = self._clock() - within_seconds
        with self._lock:
            found = [beat for seen, beat in self._beats.values() if seen >= oldest]
        return sorted(found, key=lambda b: (b.stage, b.worker_id))

    def forget(self, worker_id: str) -> None:
        with self._lock:
            self._beats.pop(worker_id, None)


class InMemoryOperatorLog(OperatorLog):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: deque[OperatorAction] = deque(maxlen=MAX_KEPT_ACTIONS)

    def record(self, action: OperatorAction) -> None:
        with self._lock:
            self._actions.append(replace(action, at=utc_now()))

    def recent(self, limit: int = 100, *, actor: str | None = None) -> list[OperatorAction]:
        with self._lock:
            newest_first = list(reversed(self._actions))
        return [a for a in newest_first if actor in (None, a.actor)][:limit]


class InMemoryStuckWork(StuckWork):
    def __init__(self, repository: InMemoryStatusRepository, leases: InMemoryDocumentLeases):
        self._repository = repository
        self._leases = leases

    def find(self, *, expiring_within: float, limit: int = 100) -> list[StuckDocument]:
        now = self._leases.now()
        held = dict(self._leases.leases)
        found = []
        for document in sorted(self._repository.documents.values(), key=lambda d: d.id):
            lease = held.get(document.id)
            if document.processing_status not in self._leases.RECOVERABLE:
                continue
            if lease is None:
                if document.processing_status is DocumentProcessingStatus.PROCESSING:
                    found.append(
                        StuckDocument(
                            document_id=document.id,
                            status=document.processing_status.value,
                            owner=None,
                            seconds_left=None,
                        )
                    )
                continue
            owner, until = lease
            if until - now <= expiring_within:
                found.append(
                    StuckDocument(
                        document_id=document.id,
                        status=document.processing_status.value,
                        owner=owner,
                        seconds_left=until - now,
                    )
                )
        return found[:limit]
