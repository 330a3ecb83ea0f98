"""Queue backlogs on Redis Streams: each work queue's consumer group on the stream of each
routing key bound to it.

``XINFO GROUPS`` tells a group's ``lag`` (entries not yet delivered to it) and ``pending``
(delivered, not acknowledged); the oldest waiting entry is the first after the group's
``last-delivered-id``, and an entry id's first part is the time it was added, in ms.
"""

from __future__ import annotations

import time

from redis.exceptions import ResponseError

from adapters.backoff import Backoff, retry_once
from adapters.redis.connection import LINK_ERRORS, RedisConnection, entries, text
from adapters.redis.topology import RedisTopology
from domain.events import WORK_QUEUES
from domain.ports import Backlog, QueueBacklogs

# When the server cannot tell a group's lag (entries deleted after its position), the
# waiting entries are counted by reading them, at most this many.
MAX_COUNTED = 10_000


class RedisQueueBacklogs(QueueBacklogs):
    """Reads stream and group state with the broker's client; nothing is consumed."""

    def __init__(
        self,
        connection: RedisConnection,
        topology: RedisTopology,
        *,
        work_queues: dict[str, tuple[str, ...]] = WORK_QUEUES,
    ) -> None:
        self._client = connection.client
        self._topology = topology
        self._work_queues = work_queues
        self._backoff = Backoff()

    def of(self, queue: str) -> Backlog:
        return retry_once(lambda: self._read(queue), transient=LINK_ERRORS, backoff=self._backoff)

    def _read(self, queue: str) -> Backlog:
        waiting, pending = 0, 0
        oldest_ms: int | None = None
        for key in self._work_queues.get(queue, ()):
            stream_waiting, stream_pending, first_ms = self._stream(
                self._topology.work_stream(key), queue
            )
            waiting += stream_waiting
            pending += stream_pending
            if first_ms is not None and (oldest_ms is None or first_ms < oldest_ms):
                oldest_ms = first_ms
        age = None if oldest_ms is None else max(0.0, time.time() - oldest_ms / 1000)
        return Backlog(queue=queue, waiting=waiting, oldest_age_seconds=age, unacknowledged=pending)

    def _stream(self, stream: str, group: str) -> tuple[int, int, int | None]:
        """The entries of ``stream`` waiting for ``group``, its pending ones, and when the
        first waiting one was added (ms)."""
        try:
            groups = self._client.xinfo_groups(stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return 0, 0, None
            raise
        info = next((g for g in groups if _text(g.get("name")) == group), None)
        if info is None:
            # No worker declared the group yet; created from the start, it gets every entry.
            first = entries(self._client.xrange(stream, "-", "+", count=1))
            return int(self._client.xlen(stream)), 0, _ms(first[0][0]) if first else None
        last = _text(info.get("last-delivered-id")) or "0-0"
        after = f"({last}"
        first = entries(self._client.xrange(stream, after, "+", count=1))
        lag = info.get("lag")
        if first and lag is None:
            lag = len(entries(self._client.xrange(stream, after, "+", count=MAX_COUNTED)))
        waiting = int(lag or 0) if first else 0
        return waiting, int(info.get("pending") or 0), _ms(first[0][0]) if first else None


def _text(value: object) -> str | None:
    return None if value is None else text(value)


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])
