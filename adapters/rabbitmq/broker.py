"""The RabbitMQ transport: work queues on quorum queues, a status broadcast, dead letters.

Each work queue and each status subscription owns a connection driven by its own thread
(``ConnectionLoop``), so heartbeats are answered even while a worker spends minutes on one job,
and a lost connection is reopened with backoff behind the caller's back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from adapters.rabbitmq.connection import (
    LINK_ERRORS,
    ConnectionLoop,
    ConnectionLost,
    SharedConnection,
    connection_parameters,
)
from adapters.rabbitmq.publisher import PERSISTENT, RabbitMQPublisher
from adapters.rabbitmq.topology import (
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    STATUS_BINDING,
    Topology,
)
from domain.errors import MalformedMessage
from domain.events import Event, StatusEvent, decode
from domain.ports import Delivery, MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_SECONDS = 15.0


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside from a work queue, with why."""

    routing_key: str
    body: bytes
    reason: str


class RabbitMQBroker(MessageBroker):
    """Publishers, work queues and status subscriptions on one RabbitMQ exchange."""

    def __init__(
        self, url: str, exchange: str, *, max_deliveries: int = 5, prefetch: int = 8
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self._url = url
        self._topology = Topology(exchange, max_deliveries)
        self._prefetch = prefetch
        self._lock = threading.Lock()
        self._opened: list[_Closable] = []
        self._raw_publisher: RabbitMQPublisher | None = None
        self._inspector = SharedConnection(
            connection_parameters(url, f"insighthub inspector ({exchange})")
        )

    @property
    def max_deliveries(self) -> int:
        return self._topology.max_deliveries

    def publisher(self) -> MessagePublisher:
        return self._track(self._new_publisher())

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        return self._track(
            RabbitMQWorkQueue(
                connection_parameters(
                    self._url, f"insighthub worker ({self._topology.queue(name)})"
                ),
                self._topology,
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
                connection_parameters(self._url, f"insighthub status ({self._topology.exchange})"),
                self._topology,
                on_event,
                on_resync,
            )
        )
        subscription.start(SUBSCRIBE_TIMEOUT_SECONDS)
        return subscription

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Route ``body`` as it is, valid or not: how a foreign producer would."""
        with self._lock:
            if self._raw_publisher is None:
                self._raw_publisher = self._new_publisher()
                self._opened.append(self._raw_publisher)
            publisher = self._raw_publisher
        publisher.publish_raw(routing_key, body)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """What was set aside from work queue ``queue``, oldest first; nothing is consumed."""
        with self._inspector.lock:
            try:
                return self._peek_dead_letters(queue)
            except LINK_ERRORS:
                self._inspector.drop()
                return self._peek_dead_letters(queue)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
            self._raw_publisher = None
        for thing in opened:
            try:
                thing.close()
            except Exception:  # closing the rest matters more than one failure
                log.exception("closing a rabbitmq connection failed")
        self._inspector.close()

    def _new_publisher(self) -> RabbitMQPublisher:
        return RabbitMQPublisher(
            self._url, self._topology.exchange, max_deliveries=self._topology.max_deliveries
        )

    def _track(self, thing: C) -> C:
        with self._lock:
            self._opened.append(thing)
        return thing

    def _peek_dead_letters(self, queue: str) -> list[DeadLetter]:
        connection = self._inspector.get()
        self._topology.declare_dead_queue(connection, queue)
        channel = connection.channel()
        letters: list[DeadLetter] = []
        try:
            while True:
                method, properties, body = channel.basic_get(
                    self._topology.dead_queue(queue), auto_ack=False
                )
                if method is None:
                    break
                letters.append(_dead_letter_of(properties, body))
        finally:
            # Closing the channel hands every message it got back to the queue, untouched.
            if channel.is_open:
                channel.close()
        return letters


def _dead_letter_of(properties: BasicProperties, body: bytes) -> DeadLetter:
    headers: dict[str, Any] = properties.headers or {}
    reason = headers.get(REASON_HEADER)
    routing_key = headers.get(ROUTING_KEY_HEADER)
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        # Set aside by the broker itself: its record says why and where the message came from.
        death = deaths[0]
        if reason is None:
            reason = f"broker: {death.get('reason', 'unknown')} (queue {death.get('queue')})"
        if routing_key is None and death.get("routing-keys"):
            routing_key = death["routing-keys"][0]
    return DeadLetter(
        routing_key=str(routing_key or ""), body=body, reason=str(reason or "unknown")
    )


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
            self._queue._settle(
                self._incoming, "dead-letter", f"{reason} (after {self.attempt} deliveries)"
            )
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
        topology: Topology,
        name: str,
        routing_keys: tuple[str, ...],
        *,
        prefetch: int,
    ) -> None:
        self.name = name
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
        try:
            event = decode(body)
        except MalformedMessage as exc:
            log.warning(
                "malformed message dead-lettered",
                extra={"queue": self.name, "reason": str(exc), "routing_key": method.routing_key},
            )
            self._set_aside(tag, method.routing_key, body, str(exc))
            return
        returns = (properties.headers or {}).get("x-delivery-count", 0)
        attempt = (returns if isinstance(returns, int) else 0) + 1
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

    def _set_aside(self, tag: int, routing_key: str, body: bytes, reason: str) -> None:
        """Copy the message to the dead-letter queue (confirmed), then take it off the queue.

        Runs on the loop's thread. If the copy is not confirmed, the original goes back to the
        queue, so nothing is lost.
        """
        channel, dead_letter_channel = self._channel, self._dead_letter_channel
        if channel is None or dead_letter_channel is None:
            raise ConnectionLost("no channel")
        properties = pika.BasicProperties(
            delivery_mode=PERSISTENT,
            headers={REASON_HEADER: reason, ROUTING_KEY_HEADER: routing_key},
        )
        try:
            dead_letter_channel.basic_publish(
                self._topology.dead_letter_exchange, self.name, body, properties, mandatory=True
            )
        except LINK_ERRORS:
            if channel.is_open:
                channel.basic_nack(tag, requeue=True)
            raise
        channel.basic_ack(tag)


class RabbitMQSubscription(Subscription):
    """Hears every status event through an exclusive, auto-delete queue of its own."""

    def __init__(
        self,
        parameters: pika.URLParameters,
        topology: Topology,
        on_event: StatusListener,
        on_resync: Callable[[], None] | None,
    ) -> None:
        self._topology = topology
        self._on_event = on_event
        self._on_resync = on_resync
        self._missed_events = False
        self._loop = ConnectionLoop(
            parameters,
            name=f"rabbitmq-status-{topology.exchange}",
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
        if self._on_resync is not None:
            try:
                self._on_resync()
            except Exception:  # the subscription must outlive a listener's bug
                log.exception("status resync listener failed")

    def _on_lost(self) -> None:
        self._missed_events = True

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        try:
            event = decode(body)
        except MalformedMessage as exc:
            log.warning("dropped a malformed status message", extra={"reason": str(exc)})
            return
        if not isinstance(event, StatusEvent):
            log.warning("dropped a non-status event", extra={"routing_key": event.routing_key})
            return
        try:
            self._on_event(event)
        except Exception:  # one listener's bug must not end the subscription
            log.exception("status listener failed")
