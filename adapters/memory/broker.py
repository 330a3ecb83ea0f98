"""An in-process broker: durable-in-memory work queues and a status fan-out.

It speaks the same wire format as the network transports (every message is encoded and
decoded), so a message that would break on RabbitMQ breaks here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.memory.backlog import InMemoryQueueBacklogs
from adapters.memory.connection import InMemoryConnection
from adapters.memory.dead_letters import InMemoryDeadLetters
from adapters.memory.publisher import InMemoryPublisher
from adapters.memory.subscription import InMemorySubscription
from adapters.memory.topology import InMemoryTopology
from adapters.memory.work_queue import InMemoryWorkQueue
from adapters.messaging import PLAIN, EventCodec, Opened
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener


class InMemoryBroker(MessageBroker):
    """Work queues and a status fan-out that live as long as this object."""

    def __init__(self, *, max_deliveries: int = 5, codec: EventCodec = PLAIN) -> None:
        self._codec = codec
        self.topology = InMemoryTopology(max_deliveries)
        self.connection = InMemoryConnection()
        self._dead_letters = InMemoryDeadLetters(self.connection)
        self._backlogs = InMemoryQueueBacklogs(self.connection)
        self._opened = Opened()
        self.topology.declare_all(self.connection)

    @property
    def max_deliveries(self) -> int:
        return self.topology.max_deliveries

    def publisher(self) -> MessagePublisher:
        return InMemoryPublisher(self.connection, codec=self._codec)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        self.topology.declare_work_queue(self.connection, name, routing_keys)
        return InMemoryWorkQueue(
            self.connection,
            self._dead_letters,
            name,
            max_deliveries=self.max_deliveries,
            codec=self._codec,
        )

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        return self._opened.track(
            InMemorySubscription(self.connection, on_event, codec=self._codec)
        )

    def dead_letters(self) -> InMemoryDeadLetters:
        return self._dead_letters

    def backlogs(self) -> InMemoryQueueBacklogs:
        return self._backlogs

    def close(self) -> None:
        self._opened.close_all()
