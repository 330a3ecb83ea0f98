"""Publishing to RabbitMQ with publisher confirms: a publish returns only once the broker has it."""

from __future__ import annotations

import logging
import time

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import NackError, UnroutableError

from adapters.backoff import Backoff
from adapters.rabbitmq.connection import LINK_ERRORS, SharedConnection, connection_parameters
from adapters.rabbitmq.topology import Topology
from domain.errors import PublishFailed
from domain.events import STATUS_ROUTING_KEYS, DeliveryKind, Event, encode
from domain.ports import MessagePublisher

log = logging.getLogger(__name__)

PERSISTENT = 2


class RabbitMQPublisher(MessagePublisher):
    """Publishes events to a topic exchange as persistent, confirmed messages; thread-safe.

    On connecting it declares the exchange and every work queue, so work sent before any
    worker has started is kept. A lost connection is reopened (after a short backoff) and the
    publish retried once; a publish the broker did not confirm raises ``PublishFailed``.
    """

    def __init__(self, rabbitmq_url: str, exchange: str, *, max_deliveries: int = 5) -> None:
        self._topology = Topology(exchange, max_deliveries)
        self._link = SharedConnection(
            connection_parameters(rabbitmq_url, f"insighthub publisher ({exchange})"),
            on_open=self._topology.declare_all,
        )
        self._channel: BlockingChannel | None = None
        self._channel_connection: BlockingConnection | None = None
        self._backoff = Backoff(initial=0.05, maximum=2.0)
        self._closed = False

    @property
    def exchange(self) -> str:
        return self._topology.exchange

    def publish(self, event: Event) -> None:
        self._publish(
            event.routing_key,
            encode(event),
            # Work nobody can receive is an error; a status event nobody listens to is not.
            mandatory=event.kind is DeliveryKind.WORK,
            message_id=event.event_id,
        )

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Publish ``body`` as it is, valid or not, as a foreign producer could."""
        self._publish(routing_key, body, mandatory=routing_key not in STATUS_ROUTING_KEYS)

    def close(self) -> None:
        with self._link.lock:
            self._closed = True
            self._channel = self._channel_connection = None
            self._link.drop()

    def _publish(
        self, routing_key: str, body: bytes, *, mandatory: bool, message_id: str | None = None
    ) -> None:
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id,
            type=routing_key,
        )
        with self._link.lock:
            if self._closed:
                raise PublishFailed("the publisher is closed")
            failure: Exception | None = None
            for attempt in (1, 2):
                if attempt == 2:
                    time.sleep(self._backoff.next_delay())
                try:
                    channel = self._confirming_channel()
                    channel.basic_publish(
                        self.exchange, routing_key, body, properties, mandatory=mandatory
                    )
                except UnroutableError:
                    raise PublishFailed(
                        f"no queue is bound to {routing_key!r} on exchange {self.exchange!r}"
                    ) from None
                except NackError:
                    raise PublishFailed(
                        f"the broker refused the message for {routing_key!r}"
                    ) from None
                except LINK_ERRORS as exc:
                    failure = exc
                    log.warning(
                        "rabbitmq publish failed",
                        extra={"routing_key": routing_key, "attempt": attempt, "error": repr(exc)},
                    )
                    self._channel = self._channel_connection = None
                    self._link.drop()
                    continue
                self._backoff.reset()
                return
            raise PublishFailed(
                f"rabbitmq did not confirm {routing_key!r} on {self.exchange!r}: {failure!r}"
            ) from failure

    def _confirming_channel(self) -> BlockingChannel:
        connection = self._link.get()
        if (
            self._channel is None
            or self._channel_connection is not connection
            or not self._channel.is_open
        ):
            channel = connection.channel()
            channel.confirm_delivery()
            self._channel, self._channel_connection = channel, connection
        return self._channel
