"""The Redis transport: Streams with consumer groups for work, pub/sub for status broadcasts.

Key names are in ``adapters.redis.topology``; each room of the transport has its own module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.messaging import PLAIN, EventCodec, Opened, check_max_deliveries, check_positive
from adapters.redis.backlog import RedisQueueBacklogs
from adapters.redis.connection import RedisConnection
from adapters.redis.dead_letters import RedisDeadLetters
from adapters.redis.publisher import RedisPublisher
from adapters.redis.subscription import RedisSubscription
from adapters.redis.topology import RedisTopology
from adapters.redis.work_queue import RedisWorkQueue
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener


class RedisBroker(MessageBroker):
    """Work queues on Redis Streams and a status broadcast on Redis pub/sub."""

    def __init__(
        self,
        url: str,
        *,
        max_deliveries: int = 5,
        claim_idle_seconds: float = 30.0,
        namespace: str = "insighthub",
        health_check_seconds: int = 5,
        connect_timeout_seconds: float = 10.0,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._codec = codec
        self.max_deliveries = check_max_deliveries(max_deliveries)
        self.claim_idle_seconds = check_positive("claim_idle_seconds", claim_idle_seconds)
        self.topology = RedisTopology(namespace)
        self.connection = RedisConnection(
            url,
            health_check_seconds=health_check_seconds,
            connect_timeout_seconds=connect_timeout_seconds,
        )
        self._dead_letters = RedisDeadLetters(self.connection, self.topology)
        self._backlogs = RedisQueueBacklogs(self.connection, self.topology)
        self._opened = Opened()

    @property
    def url(self) -> str:
        return self.connection.url

    def publisher(self) -> MessagePublisher:
        return RedisPublisher(self.connection, self.topology, codec=self._codec)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        if not routing_keys:
            raise ValueError(f"work queue {name!r} needs at least one routing key")
        return self._opened.track(
            RedisWorkQueue(
                self.connection,
                self.topology,
                name,
                routing_keys,
                max_deliveries=self.max_deliveries,
                claim_idle_seconds=self.claim_idle_seconds,
                codec=self._codec,
            )
        )

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = RedisSubscription(
            self.connection,
            self.topology,
            on_event,
            on_resync,
            on_close=self._opened.forget,
            codec=self._codec,
        )
        subscription.start(self.connection.connect_timeout_seconds)
        return self._opened.track(subscription)

    def dead_letters(self) -> RedisDeadLetters:
        return self._dead_letters

    def backlogs(self) -> RedisQueueBacklogs:
        return self._backlogs

    def close(self) -> None:
        self._opened.close_all()
        self.connection.close()
