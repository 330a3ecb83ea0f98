"""The NATS transport: work queues on JetStream, the status broadcast on core NATS subjects.

One broker owns one connection, driven by its own event loop on a private thread (see
``adapters.nats.connection``); every method here is synchronous and safe to call from any
thread except that loop's. Names of subjects, streams and consumers are in
``adapters.nats.topology``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext

from adapters.nats.connection import NatsConnection, redact
from adapters.nats.dead_letters import (
    MESSAGE_ID_HEADER,
    DeadLetter,
    dead_letter_exhausted,
    read_dead_letters,
)
from adapters.nats.subscription import NatsStatusSubscription
from adapters.nats.topology import Topology, declare_consumer, declare_streams
from adapters.nats.work_queue import NatsWorkQueue
from domain.errors import PublishFailed
from domain.events import STATUS_ROUTING_KEYS, DeliveryKind, Event, encode
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 5.0
DEAD_LETTER_READ_TIMEOUT_SECONDS = 60.0

__all__ = ["DeadLetter", "NatsBroker", "NatsPublisher"]


class NatsBroker(MessageBroker):
    """Work queues, dead letters and the status broadcast of one namespace on a NATS server."""

    def __init__(
        self,
        url: str,
        *,
        max_deliveries: int = 5,
        ack_wait: float = 30.0,
        namespace: str = "insighthub",
        api_timeout: float = API_TIMEOUT_SECONDS,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        if ack_wait <= 0:
            raise ValueError(f"ack_wait must be positive, got {ack_wait}")
        self.topology = Topology(namespace)
        self.max_deliveries = max_deliveries
        self.ack_wait = ack_wait
        self._api_timeout = api_timeout
        self._connection = NatsConnection(
            url, name=f"insighthub-{namespace}", api_timeout=api_timeout
        )
        try:
            self._connection.call(
                declare_streams(self._connection.jetstream, self.topology), 4 * api_timeout
            )
        except Exception as exc:
            self._connection.close()
            raise ConnectionError(
                f"cannot declare the JetStream streams of namespace {namespace!r} at "
                f"{redact(url)} (is JetStream enabled?): {exc or type(exc).__name__}"
            ) from exc
        self._lock = threading.Lock()
        self._closed = False
        self._queues: list[NatsWorkQueue] = []
        self._subscriptions: list[NatsStatusSubscription] = []
        # Touched only on the connection's loop.
        self._watched_queues: dict[str, CoreSubscription] = {}

    def publisher(self) -> MessagePublisher:
        return NatsPublisher(self)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        self._check_open()
        subscription = self._connection.call(
            self._open_queue(name, tuple(routing_keys)), 4 * self._api_timeout
        )
        queue = NatsWorkQueue(
            self._connection,
            self.topology,
            name,
            subscription,
            max_deliveries=self.max_deliveries,
            api_timeout=self._api_timeout,
        )
        with self._lock:
            self._queues.append(queue)
        return queue

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        self._check_open()
        subscription = NatsStatusSubscription(
            self._connection,
            self.topology,
            on_event,
            on_resync,
            api_timeout=self._api_timeout,
        )
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Route a body as it is, valid or not: how a foreign producer would."""
        if routing_key in STATUS_ROUTING_KEYS:
            self._publish_status(routing_key, body)
        else:
            self._publish_work(routing_key, body, message_id=None)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """What was set aside from ``queue``, oldest first; reading consumes nothing."""
        self._check_open()
        return self._connection.call(
            read_dead_letters(self._connection.jetstream, self.topology, queue),
            DEAD_LETTER_READ_TIMEOUT_SECONDS,
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queues, self._queues = self._queues, []
            subscriptions, self._subscriptions = self._subscriptions, []
        for queue in queues:
            queue.close()
        for subscription in subscriptions:
            subscription.close()
        self._connection.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the NATS broker is closed")

    async def _open_queue(
        self, name: str, routing_keys: tuple[str, ...]
    ) -> JetStreamContext.PullSubscription:
        js = self._connection.jetstream
        await declare_consumer(
            js,
            self.topology,
            name,
            routing_keys,
            ack_wait=self.ack_wait,
            max_deliveries=self.max_deliveries,
        )
        if name not in self._watched_queues:
            self._watched_queues[name] = await self._connection.client.subscribe(
                self.topology.max_deliveries_advisory(name),
                cb=self._exhausted_handler(name),
            )
        return await js.pull_subscribe_bind(durable=name, stream=self.topology.work_stream)

    def _exhausted_handler(self, queue: str) -> Callable[[Msg], Coroutine[Any, Any, None]]:
        async def handle(advisory: Msg) -> None:
            try:
                await dead_letter_exhausted(
                    self._connection.jetstream, self.topology, queue, advisory.data
                )
            except Exception:
                # The message stays in the work stream; an operator can still find it there.
                log.exception("could not dead-letter an exhausted message of %s", queue)

        return handle

    def _publish_work(self, routing_key: str, body: bytes, *, message_id: str | None) -> None:
        subject = self.topology.work_subject(routing_key)
        self._publish(
            self._publish_work_async(subject, body, message_id), f"a {routing_key} message"
        )

    def _publish_status(self, routing_key: str, body: bytes) -> None:
        subject = self.topology.status_subject(routing_key)
        self._publish(self._publish_status_async(subject, body), f"a {routing_key} message")

    def _publish_batch(self, events: Sequence[Event]) -> None:
        if not events:
            return
        messages = [
            (
                event.kind,
                self.topology.status_subject(event.routing_key)
                if event.kind is DeliveryKind.STATUS
                else self.topology.work_subject(event.routing_key),
                encode(event),
                event.event_id,
            )
            for event in events
        ]
        self._publish(
            self._publish_batch_async(messages),
            f"a batch of {len(messages)} messages",
            # One flush and one wait for the acks, each bounded by the API timeout.
            timeout=2 * self._api_timeout + 1,
        )

    def _publish(
        self, step: Coroutine[Any, Any, None], what: str, *, timeout: float | None = None
    ) -> None:
        if self._closed:
            step.close()
            raise PublishFailed("the NATS broker is closed")
        try:
            self._connection.call(step, timeout or self._api_timeout + 1)
        except PublishFailed:
            raise
        except Exception as exc:
            raise PublishFailed(
                f"NATS did not confirm {what}: {exc or type(exc).__name__}"
            ) from exc

    async def _publish_batch_async(
        self, messages: Sequence[tuple[DeliveryKind, str, bytes, str]]
    ) -> None:
        """Send every message in order, then wait once: for all JetStream acks and one flush."""
        self._require_connection()
        client = self._connection.client
        jetstream = self._connection.jetstream
        acks: list[asyncio.Future[Any]] = []
        status_sent = False
        try:
            for kind, subject, body, message_id in messages:
                if kind is DeliveryKind.STATUS:
                    await client.publish(subject, body)
                    status_sent = True
                else:
                    acks.append(
                        await jetstream.publish_async(
                            subject,
                            body,
                            wait_stall=self._api_timeout,
                            stream=self.topology.work_stream,
                            headers={MESSAGE_ID_HEADER: message_id},
                        )
                    )
            if status_sent:
                await client.flush(timeout=math.ceil(self._api_timeout))
            # Any error or a missing ack fails the whole batch: the caller sends it again.
            await asyncio.wait_for(asyncio.gather(*acks), self._api_timeout)
        finally:
            for ack in acks:
                ack.cancel()

    async def _publish_work_async(self, subject: str, body: bytes, message_id: str | None) -> None:
        self._require_connection()
        # JetStream drops a second message with the same id within its duplicate window, so
        # re-publishing after an unconfirmed attempt cannot queue the same work twice.
        headers = {MESSAGE_ID_HEADER: message_id} if message_id else None
        await self._connection.jetstream.publish(
            subject,
            body,
            timeout=self._api_timeout,
            stream=self.topology.work_stream,
            headers=headers,
        )

    async def _publish_status_async(self, subject: str, body: bytes) -> None:
        self._require_connection()
        client = self._connection.client
        await client.publish(subject, body)
        # The server answering this ping means it has received (and fanned out) the event.
        await client.flush(timeout=math.ceil(self._api_timeout))

    def _require_connection(self) -> None:
        # nats-py would buffer a publish while reconnecting and send it later; a caller must
        # learn now that the broker has not taken the event.
        if not self._connection.connected:
            raise PublishFailed(f"not connected to NATS at {redact(self._connection.url)}")


class NatsPublisher(MessagePublisher):
    """Work requests go to JetStream (confirmed); status events to core NATS (flushed)."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker

    def publish(self, event: Event) -> None:
        body = encode(event)
        if event.kind is DeliveryKind.STATUS:
            self._broker._publish_status(event.routing_key, body)
        else:
            self._broker._publish_work(event.routing_key, body, message_id=event.event_id)

    def publish_many(self, events: Sequence[Event]) -> None:
        self._broker._publish_batch(events)
