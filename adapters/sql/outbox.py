"""The outbox table as an ``Outbox``: claimed, published and marked sent, safely in parallel.

A turn of the relay is one transaction. On PostgreSQL it locks the oldest unsent rows with
``FOR UPDATE SKIP LOCKED`` (rows another relay holds are passed over), keeps only those that
are next in line for their entity, publishes them, marks them sent and commits; the locks are
held while publishing, so no two relays publish the same row at once. If the relay dies or
the publish fails, the transaction rolls back and the rows are offered again: at least once.

No position is remembered between turns: every turn selects ``sent_at IS NULL``, so a row
whose transaction took an earlier id but committed late is never skipped.

Waking up: on PostgreSQL a trigger (migration ``b7d4e91c2f60``) sends a NOTIFY when an
insert commits and ``wait`` listens for it; in this process a commit through the shared
session factory wakes it too; otherwise it polls, which also covers a missed notification or
a lost listening connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from adapters.sql.database import Database, psycopg_connection
from adapters.sql.records import outbox
from domain.ports.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)

# Kept in step with migration b7d4e91c2f60, whose trigger notifies this channel.
CHANNEL_PREFIX = "insighthub_outbox_"
# Without notifications (SQLite, or a lost listening connection) the outbox is polled this often.
POLL_SECONDS = 0.25


class SqlOutbox(Outbox):
    """The ``outbox`` table of a ``Database`` (PostgreSQL or SQLite), for one or more relays.

    On SQLite, where a writer excludes every other writer, a turn does not hold the database
    while publishing; run a single relay there (a second one would only cause duplicates).
    """

    def __init__(self, database: Database, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._database = database
        self._poll_seconds = poll_seconds
        self._postgres = database.engine.dialect.name == "postgresql"
        self._committed = threading.Event()
        self._listener: Any = None
        self._closed = False
        self._failures = 0
        # Serialises this process's relays on SQLite, which cannot lock rows.
        self._turn = threading.Lock()
        event.listen(database.session_factory, "after_commit", self._on_commit)

    def relay(self, publish: Callable[[Sequence[OutboxEntry]], None], *, limit: int) -> int:
        try:
            if self._postgres:
                sent = self._relay_locked(publish, limit)
            else:
                with self._turn:
                    sent = self._relay_unlocked(publish, limit)
        except OperationalError as exc:
            # The database is unreachable (or, on SQLite, busy): nothing was marked, so the
            # same entries are offered again once it answers; until then ``wait`` backs off.
            self._failures += 1
            log.warning("outbox unreachable; will retry: %s", _first_line(exc))
            return 0
        self._failures = 0
        return sent

    def _relay_locked(self, publish: Callable[[Sequence[OutboxEntry]], None], limit: int) -> int:
        # Two round trips a turn, on psycopg directly: BEGIN with the claim, then the mark
        # with the COMMIT (pipelined). The claimed rows stay locked while publishing; if the
        # publish fails, the pool's rollback on return leaves them unmarked, offered again.
        with (
            psycopg_connection(self._database.engine, "outbox relay turn") as raw,
            raw.cursor(row_factory=namedtuple_row) as cursor,
        ):
            rows = cursor.execute(_CLAIM_NEXT_IN_LINE, {"limit": limit}).fetchall()
            if not rows:
                return 0
            entries = [_entry(row) for row in rows]
            publish(entries)
            with raw.pipeline():
                cursor.execute(_MARK_SENT, (datetime.now(UTC), [entry.id for entry in entries]))
                raw.commit()
        return len(entries)

    def _relay_unlocked(self, publish: Callable[[Sequence[OutboxEntry]], None], limit: int) -> int:
        with self._database.session_factory() as session:
            with session.begin():
                rows = session.execute(
                    select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.body)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(limit)
                ).all()
            if not rows:
                return 0
            entries = [_entry(row) for row in rows]
            publish(entries)
            with session.begin():
                _mark_sent(session, [row.id for row in rows])
        return len(rows)

    def wait(self, timeout: float) -> None:
        if self._failures:
            time.sleep(min(timeout, self._poll_seconds * 2 ** min(self._failures, 3)))
            return
        deadline = time.monotonic() + timeout
        if self._postgres and self._listen_for(timeout):
            return
        # Polling: woken early by a commit in this process, else every poll interval.
        remaining = max(0.0, min(deadline - time.monotonic(), self._poll_seconds))
        self._committed.wait(remaining)
        self._committed.clear()

    def prune(self, older_than_seconds: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        with self._database.session_factory() as session, session.begin():
            result = session.execute(
                delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff)
            )
        pruned: int = getattr(result, "rowcount", 0) or 0
        return pruned

    def unsent(self) -> int:
        """How many entries await publication (for health checks and tests)."""
        with self._database.session_factory() as session:
            rows = session.execute(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).all()
        return len(rows)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            event.remove(self._database.session_factory, "after_commit", self._on_commit)
        self._drop_listener()

    def _on_commit(self, session: Session) -> None:
        self._committed.set()

    def _listen_for(self, timeout: float) -> bool:
        """Block until a notification or ``timeout``; ``False`` if there is no listener."""
        if self._closed:
            return False
        try:
            listener = self._listener or self._open_listener()
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
            # Several commits may have notified at once: take them all now, not one per turn.
            for _ in listener.notifies(timeout=0):
                pass
            return True
        except Exception as exc:  # the listener is an optimisation: fall back to polling
            log.warning("outbox listener lost; polling until it is back: %s", exc)
            self._drop_listener()
            return False

    def _open_listener(self) -> Any:
        pooled = self._database.engine.raw_connection()
        connection = pooled.driver_connection
        if connection is None:
            raise RuntimeError("the database driver gave no connection")
        # A connection of its own, outside the pool, kept open for LISTEN.
        pooled.detach()
        connection.autocommit = True
        schema = connection.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = 'outbox'::regclass"
        ).fetchone()[0]
        channel = (CHANNEL_PREFIX + schema).replace('"', '""')
        connection.execute(f'LISTEN "{channel}"')
        self._listener = connection
        return connection

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()


# The oldest unsent rows not held by another relay, of which those next in line for their
# entity: a claimed row waits while an earlier unsent row of its entity is not claimed here
# (another relay holds it), which keeps per-entity order with several relays.
_CLAIM_NEXT_IN_LINE = """
WITH claimed AS MATERIALIZED (
    SELECT id, entity_type, entity_id, event_id, routing_key, body
    FROM outbox
    WHERE sent_at IS NULL
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
SELECT id, event_id, routing_key, body
FROM claimed
WHERE NOT EXISTS (
    SELECT 1
    FROM outbox AS earlier
    WHERE earlier.sent_at IS NULL
      AND earlier.entity_type = claimed.entity_type
      AND earlier.entity_id = claimed.entity_id
      AND earlier.id < claimed.id
      AND earlier.id NOT IN (SELECT id FROM claimed)
)
ORDER BY id
"""
_MARK_SENT = "UPDATE outbox SET sent_at = %s WHERE id = ANY(%s)"


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(row.id, row.event_id, row.routing_key, str(row.body).encode())


def _mark_sent(session: Session, ids: list[int]) -> None:
    session.execute(update(outbox).where(outbox.c.id.in_(ids)).values(sent_at=datetime.now(UTC)))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
