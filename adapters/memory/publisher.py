"""Publishing in process: status events to every subscriber, work to its bound queues."""

from __future__ import annotations

from adapters.memory.connection import InMemoryConnection
from adapters.messaging import PLAIN, EventCodec
from domain.events import DeliveryKind, Event
from domain.ports import MessagePublisher


class InMemoryPublisher(MessagePublisher):
    """Encodes each event, as the network transports do, and routes it on the connection."""

    def __init__(self, connection: InMemoryConnection, *, codec: EventCodec = PLAIN) -> None:
        self._connection = connection
        self._codec = codec

    def publish(self, event: Event) -> None:
        body = self._codec.encode(event)
        if event.kind is DeliveryKind.STATUS:
            self._connection.broadcast(body)
        else:
            self._connection.route(event.routing_key, body)
