"""The status broadcast on RabbitMQ: an exclusive, auto-delete queue per listening instance."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from adapters.messaging import PLAIN, EventCodec, deliver_status, notify, subscription_thread_name
from adapters.rabbitmq.connection import ConnectionLoop
from adapters.rabbitmq.topology import STATUS_BINDING, RabbitMQTopology
from domain.ports import Subscription
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)


class RabbitMQSubscription(Subscription):
    """Hears every status event through an exclusive, auto-delete queue of its own."""

    def __init__(
        self,
        parameters: pika.URLParameters,
        topology: RabbitMQTopology,
        on_event: StatusListener,
        on_resync: Callable[[], None] | None,
        *,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._topology = topology
        self._codec = codec
        self._on_event = on_event
        self._on_resync = on_resync
        self._missed_events = False
        self._loop = ConnectionLoop(
            parameters,
            name=subscription_thread_name("rabbitmq", topology.exchange),
            on_open=self._on_open,
            on_ready=self._on_ready,
            on_lost=self._on_lost,
        )

    @property
    def alive(self) -> bool:
        return self._loop.ready

    def start(self, timeout: float) -> None:
        """Start listening; returns once the queue is bound, or after ``timeout`` regardless."""
        self._loop.start()
        if not self._loop.wait_ready(timeout):
            # The loop keeps trying; once it is bound the listener is told to reload the truth.
            self._missed_events = True
            log.warning(
                "status subscription not bound yet; events until it is will be missed",
                extra={"exchange": self._topology.exchange},
            )

    def close(self) -> None:
        self._loop.close()

    def _on_open(self, connection: BlockingConnection, generation: int) -> None:
        channel = connection.channel()
        self._topology.declare_exchanges(channel)
        declared = channel.queue_declare(
            "", exclusive=True, auto_delete=True, arguments={"x-queue-type": "classic"}
        )
        queue_name = declared.method.queue
        channel.queue_bind(queue_name, self._topology.exchange, routing_key=STATUS_BINDING)
        channel.basic_consume(queue_name, self._on_message, auto_ack=True)

    def _on_ready(self) -> None:
        if not self._missed_events:
            return
        self._missed_events = False
        notify(self._on_resync)

    def _on_lost(self) -> None:
        self._missed_events = True

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        deliver_status(body, self._on_event, self._codec)
