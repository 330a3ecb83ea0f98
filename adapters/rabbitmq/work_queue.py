"""A work queue on RabbitMQ: a durable quorum queue consumed with manual acks.

Each work queue owns a connection driven by its own thread (``ConnectionLoop``), so heartbeats
are answered even while a worker spends minutes on one job, and a lost connection is reopened
with backoff behind the caller's back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from adapters.messaging import PLAIN, EventCodec, exhausted
from adapters.rabbitmq.connection import LINK_ERRORS, ConnectionLoop, ConnectionLost
from adapters.rabbitmq.dead_letters import dead_letter_properties
from adapters.rabbitmq.topology import RabbitMQTopology
from domain.errors import MalformedMessage
from domain.events import Event
from domain.ports import Delivery, WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Incoming:
    generation: int
    delivery_tag: int
    event: Event
    attempt: int
    routing_key: str
    body: bytes


class RabbitMQDelivery(Delivery):
    """A work request taken from a quorum queue, settled on the queue's connection thread."""

    def __init__(self, queue: RabbitMQWorkQueue, incoming: _Incoming) -> None:
        super().__init__(incoming.event, incoming.attempt)
        self._queue = queue
        self._incoming = incoming
        self._settled = False

    def ack(self) -> None:
        if self._settle():
            self._queue._settle(self._incoming, "ack", None)

    def retry(self, reason: str) -> None:
        if not self._settle():
            return
        if self.attempt >= self._queue.max_deliveries:
            self._queue._settle(self._incoming, "dead-letter", exhausted(reason, self.attempt))
        else:
            log.info(
                "work will be retried",
                extra={"event_id": self.event.event_id, "attempt": self.attempt, "reason": reason},
            )
            self._queue._settle(self._incoming, "retry", reason)

    def dead_letter(self, reason: str) -> None:
        if self._settle():
            self._queue._settle(self._incoming, "dead-letter", reason)

    def _settle(self) -> bool:
        settled, self._settled = self._settled, True
        return not settled


class RabbitMQWorkQueue(WorkQueue):
    """Consumes one durable quorum queue with manual acks and a bounded prefetch.

    Consuming starts on the first ``receive``, so that a queue object nobody reads from holds
    no messages back from the other consumers.
    """

    def __init__(
        self,
        parameters: pika.URLParameters,
        topology: RabbitMQTopology,
        name: str,
        routing_keys: tuple[str, ...],
        *,
        prefetch: int,
        codec: EventCodec = PLAIN,
    ) -> None:
        self.name = name
        self._codec = codec
        self.max_deliveries = topology.max_deliveries
        self._topology = topology
        self._routing_keys = routing_keys
        self._prefetch = prefetch
        self._inbox: queue.SimpleQueue[_Incoming] = queue.SimpleQueue()
        self._channel: BlockingChannel | None = None
        self._dead_letter_channel: BlockingChannel | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._loop = ConnectionLoop(
            parameters, name=f"rabbitmq-{topology.queue(name)}", on_open=self._on_open
        )

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError("work queue is closed")
        with self._start_lock:
            if not self._loop.started:
                self._loop.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                incoming = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            # A delivery from a lost connection is back in the queue already.
            if incoming.generation == self._loop.generation:
                return RabbitMQDelivery(self, incoming)

    def close(self) -> None:
        """Stop consuming and close the connection: the broker takes back unsettled work."""
        self._closed = True
        self._loop.close()

    def _on_open(self, connection: BlockingConnection, generation: int) -> None:
        self._topology.declare_work_queue(connection, self.name, self._routing_keys)
        dead_letter_channel = connection.channel()
        dead_letter_channel.confirm_delivery()
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self._prefetch)
        self._channel, self._dead_letter_channel = channel, dead_letter_channel

        def on_message(
            channel: BlockingChannel,
            method: Basic.Deliver,
            properties: BasicProperties,
            body: bytes,
        ) -> None:
            self._on_message(generation, channel, method, properties, body)

        channel.basic_consume(self._topology.queue(self.name), on_message, auto_ack=False)

    def _on_message(
        self,
        generation: int,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        tag = method.delivery_tag
        returns = (properties.headers or {}).get("x-delivery-count", 0)
        attempt = (returns if isinstance(returns, int) else 0) + 1
        try:
            event = self._codec.decode(body)
        except MalformedMessage as exc:
            log.warning(
                "malformed message dead-lettered",
                extra={"queue": self.name, "reason": str(exc), "routing_key": method.routing_key},
            )
            self._set_aside(tag, method.routing_key, body, str(exc), attempt)
            return
        self._inbox.put(_Incoming(generation, tag, event, attempt, method.routing_key, body))

    def _settle(self, incoming: _Incoming, how: str, reason: str | None) -> None:
        def settle() -> None:
            channel = self._channel
            if channel is None:
                raise ConnectionLost("no channel")
            if how == "ack":
                channel.basic_ack(incoming.delivery_tag)
            elif how == "retry":
                channel.basic_nack(incoming.delivery_tag, requeue=True)
            else:
                self._set_aside(
                    incoming.delivery_tag,
                    incoming.routing_key,
                    incoming.body,
                    reason or "dead-lettered",
                    incoming.attempt,
                )

        try:
            self._loop.call(settle, generation=incoming.generation)
        except (ConnectionLost, AMQPError, OSError) as exc:
            # Unsettled work stays with the broker, which delivers it again.
            log.warning(
                "could not settle a delivery; the broker will deliver it again",
                extra={"event_id": incoming.event.event_id, "settle": how, "error": repr(exc)},
            )
            return
        if how == "dead-letter":
            log.warning(
                "work dead-lettered",
                extra={"queue": self.name, "event_id": incoming.event.event_id, "reason": reason},
            )

    def _set_aside(
        self, tag: int, routing_key: str, body: bytes, reason: str, attempt: int
    ) -> None:
        """Copy the message to the dead-letter queue (confirmed), then take it off the queue.

        Runs on the loop's thread. If the copy is not confirmed, the original goes back to the
        queue, so nothing is lost.
        """
        channel, dead_letter_channel = self._channel, self._dead_letter_channel
        if channel is None or dead_letter_channel is None:
            raise ConnectionLost("no channel")
        properties = dead_letter_properties(reason, routing_key, attempt)
        try:
            dead_letter_channel.basic_publish(
                self._topology.dead_letter_exchange, self.name, body, properties, mandatory=True
            )
        except LINK_ERRORS:
            if channel.is_open:
                channel.basic_nack(tag, requeue=True)
            raise
        channel.basic_ack(tag)
