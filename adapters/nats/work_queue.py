"""A work queue on JetStream: one durable pull consumer shared by competing workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from adapters.messaging import PLAIN, EventCodec, exhausted
from adapters.nats.connection import NatsConnection
from adapters.nats.dead_letters import publish_dead_letter
from adapters.nats.topology import NatsTopology
from domain.errors import MalformedMessage
from domain.events import Event
from domain.ports import Delivery, WorkQueue

log = logging.getLogger(__name__)

# A pull request needs a positive expiry; a zero-timeout receive still asks the server once.
MIN_FETCH_SECONDS = 0.05


class NatsDelivery(Delivery):
    """One message pulled from the queue; ``attempt`` is JetStream's delivery count."""

    def __init__(self, queue: NatsWorkQueue, message: Msg, event: Event, attempt: int) -> None:
        super().__init__(event, attempt)
        self._queue = queue
        self.message = message

    def ack(self) -> None:
        if self._queue._settle(self):
            self._queue._acknowledge(self.message)

    def retry(self, reason: str) -> None:
        if not self._queue._settle(self):
            return
        if self.attempt >= self._queue.max_deliveries:
            self._queue._dead_letter(self.message, exhausted(reason, self.attempt))
        else:
            # A negative acknowledgement makes JetStream deliver it again at once.
            self._queue._run("retry", self.message.nak())

    def dead_letter(self, reason: str) -> None:
        if self._queue._settle(self):
            self._queue._dead_letter(self.message, reason)


class NatsWorkQueue(WorkQueue):
    """Pulls one message at a time from the durable consumer named after the queue."""

    def __init__(
        self,
        connection: NatsConnection,
        topology: NatsTopology,
        name: str,
        subscription: JetStreamContext.PullSubscription,
        *,
        max_deliveries: int,
        api_timeout: float,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._codec = codec
        self.name = name
        self._subscription = subscription
        self.max_deliveries = max_deliveries
        self._api_timeout = api_timeout
        self._lock = threading.Lock()
        self._unsettled: list[NatsDelivery] = []
        self._closed = False

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError(f"work queue {self.name!r} is closed")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            message = self._fetch(deadline)
            if message is None:
                return None
            delivery = self._open(message)
            if delivery is not None:
                return delivery
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        """Stop pulling; deliveries not yet settled go back to the queue at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            unsettled, self._unsettled = self._unsettled, []
        for delivery in unsettled:
            self._run("return an unsettled delivery", delivery.message.nak())
        self._run("stop pulling", self._subscription.unsubscribe())

    def _fetch(self, deadline: float) -> Msg | None:
        wait = max(deadline - time.monotonic(), MIN_FETCH_SECONDS)
        if not self._connection.connected:
            # Reconnecting: nothing can arrive; wait out the caller's timeout without spinning.
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return None
        try:
            messages = self._connection.call(
                self._subscription.fetch(1, timeout=wait), wait + self._api_timeout
            )
        except TimeoutError:
            return None
        except Exception as exc:
            log.warning("pulling from work queue %s failed: %s", self.name, exc or repr(exc))
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return None
        return messages[0] if messages else None

    def _open(self, message: Msg) -> NatsDelivery | None:
        attempt = message.metadata.num_delivered or 1
        try:
            event = self._codec.decode(message.data)
        except MalformedMessage as exc:
            log.warning("malformed work request on %s: %s", self.name, exc)
            self._dead_letter(message, str(exc))
            return None
        delivery = NatsDelivery(self, message, event, attempt)
        with self._lock:
            self._unsettled.append(delivery)
        return delivery

    def _settle(self, delivery: NatsDelivery) -> bool:
        """Whether ``delivery`` was still unsettled (each is settled once)."""
        with self._lock:
            if delivery in self._unsettled:
                self._unsettled.remove(delivery)
                return True
            return False

    def _acknowledge(self, message: Msg) -> None:
        # A confirmed acknowledgement: if it is lost, the work comes back after the
        # acknowledgement wait and the (idempotent) handler sees it again.
        self._run("acknowledge", message.ack_sync(timeout=self._api_timeout))

    def _dead_letter(self, message: Msg, reason: str) -> None:
        self._run("dead-letter", self._move_to_dead_letters(message, reason))

    async def _move_to_dead_letters(self, message: Msg, reason: str) -> None:
        metadata = message.metadata
        # Acknowledged only once the dead letter is confirmed: if publishing it fails the
        # message stays in the queue and comes back, so nothing is lost.
        await publish_dead_letter(
            self._connection.jetstream,
            self._topology,
            queue=self.name,
            routing_key=self._topology.routing_key_of_work(message.subject),
            body=message.data,
            reason=reason,
            deliveries=metadata.num_delivered or 0,
            work_sequence=metadata.sequence.stream if metadata.sequence else 0,
        )
        await message.ack_sync(timeout=self._api_timeout)

    def _run(self, what: str, step: Coroutine[Any, Any, object]) -> None:
        try:
            self._connection.call(step, 2 * self._api_timeout)
        except Exception as exc:
            # Not settled: JetStream redelivers after the acknowledgement wait.
            log.warning(
                "could not %s on work queue %s (%s); it will be delivered again",
                what,
                self.name,
                exc or repr(exc),
            )
