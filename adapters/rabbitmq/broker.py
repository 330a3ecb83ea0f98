"""The RabbitMQ transport: work queues on quorum queues, a status broadcast, dead letters.

Each work queue and each status subscription owns a connection driven by its own thread
(``ConnectionLoop``); names and declarations are in ``adapters.rabbitmq.topology``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.messaging import PLAIN, EventCodec, Opened, connection_name
from adapters.rabbitmq.backlog import RabbitMQQueueBacklogs
from adapters.rabbitmq.connection import connection_parameters
from adapters.rabbitmq.dead_letters import RabbitMQDeadLetters
from adapters.rabbitmq.publisher import RabbitMQPublisher
from adapters.rabbitmq.subscription import RabbitMQSubscription
from adapters.rabbitmq.topology import RabbitMQTopology
from adapters.rabbitmq.work_queue import RabbitMQWorkQueue
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

SUBSCRIBE_TIMEOUT_SECONDS = 15.0


class RabbitMQBroker(MessageBroker):
    """Publishers, work queues and status subscriptions on one RabbitMQ exchange."""

    def __init__(
        self,
        url: str,
        exchange: str,
        *,
        max_deliveries: int = 5,
        prefetch: int = 8,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._codec = codec
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.url = url
        self.topology = RabbitMQTopology(exchange, max_deliveries)
        self._prefetch = prefetch
        self._opened = Opened()
        self._dead_letters = RabbitMQDeadLetters(url, self.topology)
        self._backlogs = RabbitMQQueueBacklogs(url, self.topology)

    @property
    def max_deliveries(self) -> int:
        return self.topology.max_deliveries

    def publisher(self) -> MessagePublisher:
        return self._opened.track(
            RabbitMQPublisher(
                self.url,
                self.topology.exchange,
                max_deliveries=self.topology.max_deliveries,
                codec=self._codec,
            )
        )

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        return self._opened.track(
            RabbitMQWorkQueue(
                connection_parameters(
                    self.url, connection_name("worker", self.topology.queue(name))
                ),
                self.topology,
                name,
                tuple(routing_keys),
                prefetch=self._prefetch,
                codec=self._codec,
            )
        )

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = self._opened.track(
            RabbitMQSubscription(
                connection_parameters(self.url, connection_name("status", self.topology.exchange)),
                self.topology,
                on_event,
                on_resync,
                codec=self._codec,
            )
        )
        subscription.start(SUBSCRIBE_TIMEOUT_SECONDS)
        return subscription

    def dead_letters(self) -> RabbitMQDeadLetters:
        return self._dead_letters

    def backlogs(self) -> RabbitMQQueueBacklogs:
        return self._backlogs

    def close(self) -> None:
        self._opened.close_all()
        self._dead_letters.close()
        self._backlogs.close()
