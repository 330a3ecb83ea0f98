"""Dead letters on Redis: each queue's dead-letter stream, read in place."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.redis.connection import RedisConnection, entries, text
from adapters.redis.topology import RedisTopology
from domain.ports import DeadLetter, DeadLetters


class RedisDeadLetters(DeadLetters):
    """Reads the stream ``{ns}:dead:{queue}``; an entry's id says when it was set aside."""

    def __init__(self, connection: RedisConnection, topology: RedisTopology) -> None:
        self._client = connection.client
        self._topology = topology

    def of(self, queue: str) -> list[DeadLetter]:
        letters = []
        for entry_id, fields in entries(
            self._client.xrange(self._topology.dead_letter_stream(queue))
        ):
            deliveries = text(fields.get(b"deliveries", b""))
            letters.append(
                DeadLetter(
                    queue=queue,
                    routing_key=text(fields.get(b"routing_key", b"")),
                    body=fields.get(b"body", b""),
                    reason=text(fields.get(b"reason", b"")),
                    attempts=int(deliveries) if deliveries.isdigit() else None,
                    last_failed_at=_time_of(entry_id),
                )
            )
        return letters


def _time_of(entry_id: str) -> datetime:
    milliseconds = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
