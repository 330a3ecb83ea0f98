"""An Outbox in memory, filled by the in-memory repository under its own lock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.events import Event, encode
from domain.ports.outbox import Outbox, OutboxEntry


@dataclass
class _Row:
    entry: OutboxEntry
    entity: str
    sent_at: float | None = None
    claimed: bool = False


class InMemoryOutbox(Outbox):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self.rows: list[_Row] = []

    def record(self, event: Event, entity: str) -> None:
        """Called by the repository inside its critical section, with the change it records."""
        with self._lock:
            entry = OutboxEntry(next(self._ids), event.event_id, event.routing_key, encode(event))
            self.rows.append(_Row(entry, entity))
            self._lock.notify_all()

    def relay(self, publish: Callable[[Sequence[OutboxEntry]], None], *, limit: int) -> int:
        with self._lock:
            blocked: set[str] = set()
            batch: list[_Row] = []
            for row in self.rows:
                if row.sent_at is not None:
                    continue
                if row.claimed or row.entity in blocked:
                    blocked.add(row.entity)
                    continue
                batch.append(row)
                if len(batch) == limit:
                    break
            for row in batch:
                row.claimed = True
        try:
            publish([row.entry for row in batch])
        finally:
            with self._lock:
                for row in batch:
                    row.claimed = False
        with self._lock:
            now = self._clock()
            for row in batch:
                row.sent_at = now
        return len(batch)

    def wait(self, timeout: float) -> None:
        with self._lock:
            if not any(row.sent_at is None and not row.claimed for row in self.rows):
                self._lock.wait(timeout)

    def prune(self, older_than_seconds: float) -> int:
        with self._lock:
            cutoff = self._clock() - older_than_seconds
            kept = [r for r in self.rows if r.sent_at is None or r.sent_at > cutoff]
            pruned = len(self.rows) - len(kept)
            self.rows = kept
            return pruned

    def unsent(self) -> int:
        with self._lock:
            return sum(1 for row in self.rows if row.sent_at is None)
