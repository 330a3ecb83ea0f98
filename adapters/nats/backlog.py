"""Queue backlogs on JetStream: each work queue's durable consumer, and the stream message
at its next sequence.

A consumer's info says how many messages of its filter subject it has not delivered yet
(``num_pending``) and how many are delivered but unacknowledged (``num_ack_pending``); the
oldest waiting one is the first message of that subject after the consumer's delivered
sequence, read from the stream directly (``get_msg``), which delivers nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.js.errors import NotFoundError

from adapters.nats.connection import NatsConnection
from adapters.nats.topology import NatsTopology
from domain.events import WORK_QUEUES
from domain.ports import Backlog, QueueBacklogs


class NatsQueueBacklogs(QueueBacklogs):
    """Reads consumer and stream state on the broker's connection; nothing is consumed."""

    def __init__(
        self,
        connection: NatsConnection,
        topology: NatsTopology,
        *,
        api_timeout: float,
        work_queues: dict[str, tuple[str, ...]] = WORK_QUEUES,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._api_timeout = api_timeout
        self._work_queues = work_queues

    def of(self, queue: str) -> Backlog:
        return self._connection.call(self._read(queue), 4 * self._api_timeout)

    async def _read(self, queue: str) -> Backlog:
        js = self._connection.jetstream
        stream = self._topology.work_stream
        try:
            info = await js.consumer_info(stream, queue)
        except NotFoundError:
            return await self._without_consumer(queue)
        waiting = int(info.num_pending or 0)
        subject = info.config.filter_subject
        after = info.delivered.stream_seq if info.delivered else 0
        age = None
        if waiting and subject:
            age = await self._age_of_next(subject, (after or 0) + 1)
        return Backlog(
            queue=queue,
            waiting=waiting,
            oldest_age_seconds=age,
            unacknowledged=int(info.num_ack_pending or 0),
        )

    async def _without_consumer(self, queue: str) -> Backlog:
        """No worker declared the queue yet: the stream keeps its subject's messages for it."""
        keys = self._work_queues.get(queue, ())
        if len(keys) != 1:
            return Backlog(queue=queue, waiting=0, oldest_age_seconds=None, unacknowledged=0)
        subject = self._topology.work_subject(keys[0])
        info = await self._connection.jetstream.stream_info(
            self._topology.work_stream, subjects_filter=subject
        )
        waiting = int((info.state.subjects or {}).get(subject, 0))
        age = await self._age_of_next(subject, 1) if waiting else None
        return Backlog(queue=queue, waiting=waiting, oldest_age_seconds=age, unacknowledged=0)

    async def _age_of_next(self, subject: str, sequence: int) -> float | None:
        try:
            message = await self._connection.jetstream.get_msg(
                self._topology.work_stream, seq=sequence, subject=subject, next=True
            )
        except NotFoundError:
            return None  # acknowledged (and removed) meanwhile
        if message.time is None:
            return None
        stored = message.time if message.time.tzinfo else message.time.replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - stored).total_seconds())
