"""The Redis transport: Streams with consumer groups for work, pub/sub for status broadcasts.

Key names are in ``adapters.redis.topology``; each room of the transport has its own module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from adapters.messaging import check_max_deliveries, check_positive
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
    ) -> None:
        self.max_deliveries = check_max_deliveries(max_deliveries)
        self.claim_idle_seconds = check_positive("claim_idle_seconds", claim_idle_seconds)
        self.topology = RedisTopology(namespace)
        self.connection = RedisConnection(
            url,
            health_check_seconds=health_check_seconds,
            connect_timeout_seconds=connect_timeout_seconds,
        )
        self._dead_letters = RedisDeadLetters(self.connection, self.topology)
        self._lock = threading.Lock()
        self._subscriptions: list[RedisSubscription] = []
        self._queues: list[RedisWorkQueue] = []

    @property
    def url(self) -> str:
        return self.connection.url

    def publisher(self) -> MessagePublisher:
        return RedisPublisher(self.connection, self.topology)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        if not routing_keys:
            raise ValueError(f"work queue {name!r} needs at least one routing key")
        queue = RedisWorkQueue(
            self.connection,
            self.topology,
            name,
            routing_keys,
            max_deliveries=self.max_deliveries,
            claim_idle_seconds=self.claim_idle_seconds,
        )
        with self._lock:
            self._queues.append(queue)
        return queue

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = RedisSubscription(
            self.connection, self.topology, on_event, on_resync, on_close=self._forget
        )
        subscription.start(self.connection.connect_timeout_seconds)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def dead_letters(self) -> RedisDeadLetters:
        return self._dead_letters

    def close(self) -> None:
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
            queues, self._queues = self._queues, []
        for subscription in subscriptions:
            subscription.close()
        for queue in queues:
            queue.close()
        self.connection.close()

    def _forget(self, subscription: RedisSubscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
