"""Candidate hot-path changes, applied to a benchmark's server process to measure them first.

``BENCH_PROTOTYPE=drain`` replaces ``Connection.pump`` in the server's hub by a version that,
once woken, sends everything already queued before waiting again. Same behaviour, fewer
task wake-ups: this is how a change to ``entrypoints/server/hub.py`` was measured before
proposing it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


def apply_from_environ() -> None:
    if os.environ.get("BENCH_PROTOTYPE") == "drain":
        apply_drain()


def apply_drain() -> None:
    from domain.events import entity_key
    from entrypoints.server import hub
    from entrypoints.server.metrics import ServerMetrics

    async def pump(
        self: hub.Connection, load_snapshot: hub.SnapshotLoader, metrics: ServerMetrics
    ) -> None:
        await self._send_snapshot(load_snapshot, metrics)
        queue = self._queue
        while True:
            item = await queue.get()
            while True:
                if isinstance(item, hub._Resync):
                    self._resync_pending = False
                    await self._send_snapshot(load_snapshot, metrics)
                else:
                    event = item.event
                    key = entity_key(event)
                    if event.version <= self._sent.get(key, 0):
                        metrics.events_stale += 1
                    else:
                        self._sent[key] = event.version
                        await self.socket.send_text(item.frame)
                        metrics.events_delivered += 1
                        metrics.push_lag.observe(time.time() - event.occurred_at.timestamp())
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break

    hub.Connection.pump = pump  # type: ignore[method-assign]


class LeanDocumentUpdates:
    """A candidate ``update_document_status`` for ``SqlStatusRepository``, measured in bench.

    The same single ``UPDATE … WHERE status IN (allowed) … RETURNING`` statement, but built
    once per target status with bound parameters (not rebuilt as an expression tree on every
    call) and run on a Core connection (no ORM ``Session`` per update). Anything it does not
    cover (extra fields, an expected version, a rejected move) goes to the repository as is.
    """

    def __init__(self, repository: Any, engine: Any) -> None:
        self._repository = repository
        self._engine = engine
        self._statements: dict[tuple[Any, bool], Any] = {}

    def _statement(self, status: Any, retry: bool) -> Any:
        from sqlalchemy import bindparam, update

        from adapters.sql.records import documents
        from domain.status import DOCUMENT_LIFECYCLE

        key = (status, retry)
        statement = self._statements.get(key)
        if statement is None:
            allowed = sorted(s.value for s in DOCUMENT_LIFECYCLE.sources(status, retry=retry))
            statement = (
                update(documents)
                .where(
                    documents.c.id == bindparam("b_id"),
                    documents.c.processing_status.in_(allowed),
                )
                .values(
                    processing_status=status.value,
                    processing_error=bindparam("b_error"),
                    updated_at=bindparam("b_now"),
                    version=documents.c.version + 1,
                )
                .returning(*documents.c)
            )
            self._statements[key] = statement
        return statement

    def update_document_status(self, document_id: int, status: Any, **extras: Any) -> Any:
        from datetime import UTC, datetime

        from adapters.sql.records import to_document

        error = extras.pop("error", None)
        retry = bool(extras.pop("retry", False))
        if any(value is not None for value in extras.values()):
            return self._repository.update_document_status(
                document_id, status, error=error, retry=retry, **extras
            )
        parameters = {"b_id": document_id, "b_error": error, "b_now": datetime.now(UTC)}
        with self._engine.begin() as connection:
            row = connection.execute(self._statement(status, retry), parameters).first()
        if row is None:
            return self._repository.update_document_status(
                document_id, status, error=error, retry=retry
            )
        return to_document(row._mapping)
