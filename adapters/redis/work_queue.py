"""A work queue on Redis Streams: a consumer in the group named after the queue, on the stream
of each bound routing key; each step (claiming idle work, settling) is one atomic script."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence

from redis.exceptions import RedisError, ResponseError

from adapters.backoff import Backoff, retry_once
from adapters.messaging import PLAIN, EventCodec, exhausted
from adapters.redis.connection import LINK_ERRORS, RedisConnection, batches, entries, pairs, text
from adapters.redis.topology import RedisTopology
from domain.errors import MalformedMessage
from domain.events import Event
from domain.ports import Delivery, WorkQueue

log = logging.getLogger(__name__)

# The longest a single blocking read lasts, so that idle entries are claimed while waiting.
READ_SLICE_SECONDS = 1.0

# Takes over the oldest entry of the group idle for at least ARGV[3] ms and reports how many
# times it has now been delivered, in one step, so the count cannot drift under a race.
# KEYS[1] stream; ARGV group, consumer, min idle ms.  Returns {id, fields, deliveries} or nil.
CLAIM_IDLE = """
local cursor = '0-0'
repeat
  local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
                             'COUNT', 1)
  cursor = claimed[1]
  local entry = claimed[2][1]
  if entry then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    return {entry[1], entry[2], pending[1][4]}
  end
until cursor == '0-0'
return false
"""

# Settles one delivered entry.  ACTION 'ack' acknowledges; 'dead' copies it to the dead-letter
# stream, then acknowledges; 'retry' keeps it pending but marks it idle for ARGV[6] ms, so the
# next claim by any consumer takes it at once.  An entry is deleted from its stream once every
# group bound to the stream is done with it, so streams shared by several queues stay correct.
# KEYS[1] stream, KEYS[2] dead-letter stream;
# ARGV group, consumer, id, action, reason, idle ms, routing key, body.
# Returns the action taken, 'gone' if the entry was already settled, or 'taken' if another
# consumer took it over (then only 'ack' still applies: the work is done either way).
SETTLE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer, id, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local pending = redis.call('XPENDING', stream, group, id, id, 1)[1]
if not pending then
  return 'gone'
end
if action ~= 'ack' and pending[2] ~= consumer then
  return 'taken'
end
if action == 'retry' then
  redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', ARGV[6], 'JUSTID')
  return 'retry'
end
if action == 'dead' then
  redis.call('XADD', dead, '*', 'routing_key', ARGV[7], 'body', ARGV[8], 'reason', ARGV[5],
             'stream', stream, 'entry', id, 'deliveries', pending[4])
end
redis.call('XACK', stream, group, id)

local function parse(entry_id)
  local ms, seq = string.match(entry_id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local id_ms, id_seq = parse(id)
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local last_ms, last_seq = parse(fields['last-delivered-id'])
  if last_ms < id_ms or (last_ms == id_ms and last_seq < id_seq) then
    return action
  end
  if redis.call('XPENDING', stream, fields['name'], id, id, 1)[1] then
    return action
  end
end
redis.call('XDEL', stream, id)
return action
"""


class RedisDelivery(Delivery):
    """One stream entry delivered to this consumer; settling it runs one atomic script."""

    def __init__(
        self,
        queue: RedisWorkQueue,
        stream: str,
        entry_id: str,
        body: bytes,
        *,
        event: Event,
        attempt: int,
    ) -> None:
        super().__init__(event, attempt)
        self._queue = queue
        self._stream = stream
        self._entry_id = entry_id
        self._body = body
        self._settled = False

    def ack(self) -> None:
        self._settle("ack")

    def retry(self, reason: str) -> None:
        if self.attempt >= self._queue.max_deliveries:
            self._settle("dead", exhausted(reason, self.attempt))
        else:
            self._settle("retry", reason)

    def dead_letter(self, reason: str) -> None:
        self._settle("dead", reason)

    def _settle(self, action: str, reason: str = "") -> None:
        if self._settled:
            return
        self._settled = True
        self._queue.settle(self._stream, self._entry_id, action, reason, self._body)


class RedisWorkQueue(WorkQueue):
    """A consumer in the group ``name`` of the stream of each bound routing key."""

    def __init__(
        self,
        connection: RedisConnection,
        topology: RedisTopology,
        name: str,
        routing_keys: Sequence[str],
        *,
        max_deliveries: int,
        claim_idle_seconds: float,
        codec: EventCodec = PLAIN,
    ) -> None:
        self.name = name
        self._codec = codec
        self.max_deliveries = max_deliveries
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._client = connection.client
        self._topology = topology
        self._claim_idle_ms = max(1, round(claim_idle_seconds * 1000))
        self._claim_idle = self._client.register_script(CLAIM_IDLE)
        self._settle_script = self._client.register_script(SETTLE)
        self._streams = {topology.work_stream(key): key for key in routing_keys}
        self._backoff = Backoff()
        self._settle_backoff = Backoff()
        self._closed = False
        try:
            self._declare()
        except LINK_ERRORS as exc:
            # Declared again on the first receive that reaches the server.
            log.warning("redis unreachable while declaring %s: %s", name, exc)

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError("work queue is closed")
        deadline = time.monotonic() + timeout
        while True:
            try:
                delivery = self._next(deadline)
                self._backoff.reset()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The server lost the group (a restart without persistence): declare it again.
                log.warning("redis lost the group of %s; declaring it again", self.name)
                self._declare_quietly()
                delivery = None
            except LINK_ERRORS as exc:
                pause = min(self._backoff.next_delay(), max(0.0, deadline - time.monotonic()))
                log.warning("redis link lost while receiving from %s: %s", self.name, exc)
                time.sleep(pause)
                self._declare_quietly()
                delivery = None
            if delivery is not None or time.monotonic() >= deadline:
                return delivery

    def close(self) -> None:
        """Stop consuming; unsettled entries stay pending and are claimed after the idle time."""
        if self._closed:
            return
        self._closed = True
        try:
            for stream in self._streams:
                pending = self._client.xpending_range(
                    stream, self.name, min="-", max="+", count=1, consumername=self.consumer
                )
                if not pending:
                    self._client.xgroup_delconsumer(stream, self.name, self.consumer)
        except RedisError as exc:
            log.info("could not remove consumer %s: %s", self.consumer, exc)

    def settle(self, stream: str, entry_id: str, action: str, reason: str, body: bytes) -> None:
        """Settle an entry (see ``SETTLE``), retrying once on a fresh connection; a failure
        leaves it pending, to be claimed again after the idle time, so nothing is lost."""

        def run() -> str:
            return text(
                self._settle_script(
                    keys=[stream, self._topology.dead_letter_stream(self.name)],
                    args=[
                        self.name,
                        self.consumer,
                        entry_id,
                        action,
                        reason,
                        self._claim_idle_ms + 1,
                        self._streams[stream],
                        body,
                    ],
                )
            )

        try:
            outcome = retry_once(run, transient=LINK_ERRORS, backoff=self._settle_backoff)
        except (RedisError, OSError) as exc:
            # Also when the server lost the group in a restart, and the entry with it.
            log.warning("could not %s entry %s of %s: %s", action, entry_id, stream, exc)
            return
        if outcome == "dead":
            log.warning(
                "dead-lettered", extra={"queue": self.name, "entry": entry_id, "reason": reason}
            )
        elif outcome in ("gone", "taken") and action != "ack":
            log.info("entry %s of %s was %s before its %s", entry_id, stream, outcome, action)

    def _claim(self, stream: str) -> tuple[str, bytes, int] | None:
        """Take over one entry idle past the claim timeout: its id, body and delivery count."""
        claimed = self._claim_idle(
            keys=[stream], args=[self.name, self.consumer, self._claim_idle_ms]
        )
        if not claimed:
            return None
        entry_id, flat_fields, deliveries = claimed
        ((entry, fields),) = entries([(entry_id, pairs(flat_fields))])
        return entry, fields.get(b"body", b""), int(deliveries)

    def _next(self, deadline: float) -> Delivery | None:
        """One claim-then-read round, at most one read slice long."""
        for stream in self._streams:
            claimed = self._claim(stream)
            if claimed is not None:
                entry_id, body, deliveries = claimed
                if deliveries > self.max_deliveries:
                    self.settle(
                        stream,
                        entry_id,
                        "dead",
                        f"not settled after {deliveries - 1} deliveries",
                        body,
                    )
                    return None
                return self._delivery(stream, entry_id, body, deliveries)
        wait = min(READ_SLICE_SECONDS, deadline - time.monotonic())
        read: object = self._client.xreadgroup(
            self.name,
            self.consumer,
            dict.fromkeys(self._streams, ">"),
            count=1,
            block=max(1, round(wait * 1000)) if wait > 0 else None,
        )
        for raw_stream, raw_entries in batches(read):
            for entry_id, fields in entries(raw_entries):
                return self._delivery(text(raw_stream), entry_id, fields.get(b"body", b""), 1)
        return None

    def _delivery(self, stream: str, entry_id: str, body: bytes, attempt: int) -> Delivery | None:
        try:
            event = self._codec.decode(body)
        except MalformedMessage as exc:
            self.settle(stream, entry_id, "dead", str(exc), body)
            return None
        if event.routing_key != self._streams[stream]:
            self.settle(
                stream,
                entry_id,
                "dead",
                f"a {event.routing_key} event on the stream of {self._streams[stream]}",
                body,
            )
            return None
        return RedisDelivery(self, stream, entry_id, body, event=event, attempt=attempt)

    def _declare(self) -> None:
        self._topology.declare_work_queue(self._client, self.name, list(self._streams))

    def _declare_quietly(self) -> None:
        with contextlib.suppress(*LINK_ERRORS):
            self._declare()
