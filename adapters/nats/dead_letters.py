"""The dead-letter stream: work set aside for an operator, with the reason, never consumed.

A dead letter is published with ``Nats-Msg-Id`` = ``<queue>-<work stream sequence>``, so that
setting the same message aside twice (a consumer and the max-deliveries advisory racing, or a
retry after a lost acknowledgement) stores it once.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote, unquote

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, NotFoundError

from adapters.nats.connection import NatsConnection
from adapters.nats.topology import NatsTopology
from domain.ports import DeadLetter, DeadLetters

log = logging.getLogger(__name__)

REASON_HEADER = "Dead-Letter-Reason"
QUEUE_HEADER = "Dead-Letter-Queue"
ROUTING_KEY_HEADER = "Dead-Letter-Routing-Key"
DELIVERIES_HEADER = "Dead-Letter-Deliveries"
MESSAGE_ID_HEADER = "Nats-Msg-Id"
NO_MESSAGE_FOUND = 10057
READ_TIMEOUT_SECONDS = 60.0
MAX_REASON_CHARS = 2000
# Header values are one line of text: keep punctuation readable, percent-encode the rest.
_SAFE_IN_HEADER = "".join(c for c in string.punctuation if c != "%") + " "


async def publish_dead_letter(
    js: JetStreamContext,
    topology: NatsTopology,
    *,
    queue: str,
    routing_key: str,
    body: bytes,
    reason: str,
    deliveries: int,
    work_sequence: int,
) -> None:
    """Store ``body`` in the dead-letter stream; raises unless JetStream confirmed it."""
    headers = {
        MESSAGE_ID_HEADER: f"{queue}-{work_sequence}",
        REASON_HEADER: quote(reason.strip()[:MAX_REASON_CHARS], safe=_SAFE_IN_HEADER),
        QUEUE_HEADER: queue,
        ROUTING_KEY_HEADER: routing_key,
        DELIVERIES_HEADER: str(deliveries),
    }
    stored = await js.publish(
        topology.dead_subject(queue), body, headers=headers, stream=topology.dead_stream
    )
    if stored.duplicate:
        return
    log.warning(
        "dead-lettered a work request",
        extra={"queue": queue, "routing_key": routing_key, "reason": reason},
    )


async def dead_letter_exhausted(
    js: JetStreamContext, topology: NatsTopology, queue: str, advisory: bytes
) -> None:
    """Move the message a max-deliveries advisory names from the work to the dead stream.

    JetStream stops delivering a message after ``max_deliver`` attempts but keeps it in the
    work stream; this happens when the last attempt was never settled (its consumer died or
    overran the acknowledgement wait), so nobody else would ever set it aside.
    """
    details = json.loads(advisory)
    sequence = int(details["stream_seq"])
    deliveries = int(details.get("deliveries", 0))
    try:
        stored = await js.get_msg(topology.work_stream, sequence)
    except NotFoundError:
        return  # settled late, or another instance already moved it
    await publish_dead_letter(
        js,
        topology,
        queue=queue,
        routing_key=topology.routing_key_of_work(stored.subject or ""),
        body=stored.data or b"",
        reason=f"not settled after {deliveries} deliveries (the consumer stopped or timed out)",
        deliveries=deliveries,
        work_sequence=sequence,
    )
    try:
        await js.delete_msg(topology.work_stream, sequence)
    except APIError as exc:
        if exc.err_code != NO_MESSAGE_FOUND:
            raise


class NatsDeadLetters(DeadLetters):
    """Reads a queue's subject of the dead-letter stream, message by message, consuming none."""

    def __init__(self, connection: NatsConnection, topology: NatsTopology) -> None:
        self._connection = connection
        self._topology = topology

    def of(self, queue: str) -> list[DeadLetter]:
        if self._connection.closed:
            raise RuntimeError("the NATS broker is closed")
        return self._connection.call(self._read(queue), READ_TIMEOUT_SECONDS)

    def requeue(self, queue: str, letter_id: str) -> bool:
        return self._settle(self._requeue(queue, letter_id))

    def discard(self, queue: str, letter_id: str) -> bool:
        return self._settle(self._discard(queue, letter_id))

    def _settle(self, step: Coroutine[Any, Any, bool]) -> bool:
        if self._connection.closed:
            step.close()
            raise RuntimeError("the NATS broker is closed")
        return self._connection.call(step, READ_TIMEOUT_SECONDS)

    async def _requeue(self, queue: str, letter_id: str) -> bool:
        stored = await self._stored(queue, letter_id)
        if stored is None:
            return False
        headers = {key.lower(): value for key, value in (stored.headers or {}).items()}
        routing_key = headers.get(ROUTING_KEY_HEADER.lower(), "")
        # The id keeps a second requeue of the same letter (a retry, a race) from adding it twice.
        await self._connection.jetstream.publish(
            self._topology.work_subject(routing_key),
            stored.data or b"",
            stream=self._topology.work_stream,
            headers={MESSAGE_ID_HEADER: f"requeued-{queue}-{letter_id}"},
        )
        return await self._delete(letter_id)

    async def _discard(self, queue: str, letter_id: str) -> bool:
        if await self._stored(queue, letter_id) is None:
            return False
        return await self._delete(letter_id)

    async def _stored(self, queue: str, letter_id: str) -> RawStreamMsg | None:
        if not letter_id.isdigit():
            return None
        try:
            stored = await self._connection.jetstream.get_msg(
                self._topology.dead_stream, int(letter_id)
            )
        except NotFoundError:
            return None
        return stored if stored.subject == self._topology.dead_subject(queue) else None

    async def _delete(self, letter_id: str) -> bool:
        try:
            await self._connection.jetstream.delete_msg(self._topology.dead_stream, int(letter_id))
        except APIError as exc:
            if exc.err_code != NO_MESSAGE_FOUND:
                raise
            return False
        return True

    async def _read(self, queue: str) -> list[DeadLetter]:
        subject = self._topology.dead_subject(queue)
        letters: list[DeadLetter] = []
        sequence = 1
        while True:
            try:
                stored = await self._connection.jetstream.get_msg(
                    self._topology.dead_stream, seq=sequence, subject=subject, next=True
                )
            except NotFoundError:
                return letters
            headers = {key.lower(): value for key, value in (stored.headers or {}).items()}
            deliveries = headers.get(DELIVERIES_HEADER.lower(), "")
            letters.append(
                DeadLetter(
                    letter_id=str(stored.seq),
                    queue=headers.get(QUEUE_HEADER.lower(), queue),
                    routing_key=headers.get(ROUTING_KEY_HEADER.lower(), ""),
                    body=stored.data or b"",
                    reason=unquote(headers.get(REASON_HEADER.lower(), "")),
                    attempts=int(deliveries) if deliveries.isdigit() else None,
                    last_failed_at=stored.time,
                )
            )
            sequence = (stored.seq or sequence) + 1
