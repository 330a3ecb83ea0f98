"""Dead letters on Redis: each queue's dead-letter stream, read in place."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from adapters.redis.connection import RedisConnection, entries, text
from adapters.redis.topology import RedisTopology
from domain.ports import DeadLetter, DeadLetters

_ENTRY_ID = re.compile(r"\d+-\d+\Z")

# Moves one dead letter back to a work stream in one step, so that two operators requeueing it
# at once add it once. KEYS[1] dead-letter stream, KEYS[2] work stream; ARGV[1] entry id.
# Returns 1 if it was moved, 0 if it was gone.
REQUEUE = """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if not entry then
  return 0
end
local fields = entry[2]
for i = 1, #fields, 2 do
  if fields[i] == 'body' then
    redis.call('XADD', KEYS[2], '*', 'body', fields[i + 1])
  end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


class RedisDeadLetters(DeadLetters):
    """Reads the stream ``{ns}:dead:{queue}``; an entry's id says when it was set aside."""

    def __init__(self, connection: RedisConnection, topology: RedisTopology) -> None:
        self._client = connection.client
        self._topology = topology
        self._requeue = self._client.register_script(REQUEUE)

    def of(self, queue: str) -> list[DeadLetter]:
        return [
            self._letter(queue, entry_id, fields)
            for entry_id, fields in self._entries(queue, "-", "+")
        ]

    def requeue(self, queue: str, letter_id: str) -> bool:
        if not _ENTRY_ID.match(letter_id):
            return False
        found = self._entries(queue, letter_id, letter_id)
        if not found:
            return False
        ((_, fields),) = found
        routing_key = text(fields.get(b"routing_key", b""))
        moved = self._requeue(
            keys=[
                self._topology.dead_letter_stream(queue),
                self._topology.work_stream(routing_key),
            ],
            args=[letter_id],
        )
        return bool(moved)

    def discard(self, queue: str, letter_id: str) -> bool:
        if not _ENTRY_ID.match(letter_id):
            return False
        return bool(self._client.xdel(self._topology.dead_letter_stream(queue), letter_id))

    def _entries(self, queue: str, first: str, last: str) -> list[tuple[str, dict[bytes, bytes]]]:
        return entries(self._client.xrange(self._topology.dead_letter_stream(queue), first, last))

    @staticmethod
    def _letter(queue: str, entry_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
        deliveries = text(fields.get(b"deliveries", b""))
        return DeadLetter(
            letter_id=entry_id,
            queue=queue,
            routing_key=text(fields.get(b"routing_key", b"")),
            body=fields.get(b"body", b""),
            reason=text(fields.get(b"reason", b"")),
            attempts=int(deliveries) if deliveries.isdigit() else None,
            last_failed_at=_time_of(entry_id),
        )


def _time_of(entry_id: str) -> datetime:
    milliseconds = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
