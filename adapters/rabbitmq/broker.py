"""The RabbitMQ transport: work queues on quorum queues, a status broadcast, dead letters.

Each work queue and each status subscription owns a connection driven by its own thread
(``ConnectionLoop``); names and declarations are in ``adapters.rabbitmq.topology``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from adapters.messaging import connection_name
from adapters.rabbitmq.connection import connection_parameters
from adapters.rabbitmq.dead_letters import RabbitMQDeadLetters
from adapters.rabbitmq.publisher import RabbitMQPublisher
from adapters.rabbitmq.subscription import RabbitMQSubscription
from adapters.rabbitmq.topology import RabbitMQTopology
from adapters.rabbitmq.work_queue import RabbitMQWorkQueue
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_SECONDS = 15.0


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class RabbitMQBroker(MessageBroker):
    """Publishers, work queues and status subscriptions on one RabbitMQ exchange."""

    def __init__(
        self, url: str, exchange: str, *, max_deliveries: int = 5, prefetch: int = 8
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.url = url
        self.topology = RabbitMQTopology(exchange, max_deliveries)
        self._prefetch = prefetch
        self._lock = threading.Lock()
        self._opened: list[_Closable] = []
        self._dead_letters = RabbitMQDeadLetters(url, self.topology)

    @property
    def max_deliveries(self) -> int:
        return self.topology.max_deliveries

    def publisher(self) -> MessagePublisher:
        return self._track(
            RabbitMQPublisher(
                self.url, self.topology.exchange, max_deliveries=self.topology.max_deliveries
            )
        )

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        return self._track(
            RabbitMQWorkQueue(
                connection_parameters(
                    self.url, connection_name("worker", self.topology.queue(name))
                ),
                self.topology,
                name,
                tuple(routing_keys),
                prefetch=self._prefetch,
            )
        )

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = self._track(
            RabbitMQSubscription(
                connection_parameters(self.url, connection_name("status", self.topology.exchange)),
                self.topology,
                on_event,
                on_resync,
            )
        )
        subscription.start(SUBSCRIBE_TIMEOUT_SECONDS)
        return subscription

    def dead_letters(self) -> RabbitMQDeadLetters:
        return self._dead_letters

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for thing in opened:
            try:
                thing.close()
            except Exception:  # closing the rest matters more than one failure
                log.exception("closing a rabbitmq connection failed")
        self._dead_letters.close()

    def _track(self, thing: C) -> C:
        with self._lock:
            self._opened.append(thing)
        return thing
