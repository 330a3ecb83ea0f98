"""An in-process broker: durable-in-memory work queues and a status fan-out.

It speaks the same wire format as the network transports (every message is encoded and
decoded), so a message that would break on RabbitMQ breaks here too.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.errors import MalformedMessage
from domain.events import WORK_QUEUES, DeliveryKind, Event, StatusEvent, decode, encode
from domain.ports import Delivery, MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)


@dataclass
class _Message:
    routing_key: str
    body: bytes
    attempt: int = 1


@dataclass(frozen=True)
class DeadLetter:
    routing_key: str
    body: bytes
    reason: str


class InMemoryBroker(MessageBroker):
    """Work queues and a status fan-out that live as long as this object."""

    def __init__(self, *, max_deliveries: int = 5) -> None:
        self.max_deliveries = max_deliveries
        self._lock = threading.Condition()
        self._bindings: dict[str, set[str]] = {}
        self._queues: dict[str, deque[_Message]] = {}
        self._subscribers: list[_Subscription] = []
        self._dead: dict[str, list[DeadLetter]] = {}
        for name, keys in WORK_QUEUES.items():
            self._declare(name, keys)

    def publisher(self) -> MessagePublisher:
        return InMemoryPublisher(self)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        self._declare(name, routing_keys)
        return InMemoryWorkQueue(self, name)

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = _Subscription(self, on_event)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Route a body as it is, valid or not: how a foreign producer would."""
        with self._lock:
            for name in self._bindings.get(routing_key, ()):
                self._queues[name].append(_Message(routing_key, body))
            subscribers = list(self._subscribers)
            self._lock.notify_all()
        if routing_key.endswith(".status.updated"):
            for subscription in subscribers:
                subscription.inbox.put(body)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """What was set aside from ``queue``, oldest first."""
        with self._lock:
            return list(self._dead.get(queue, ()))

    def close(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.close()

    def _declare(self, name: str, routing_keys: Sequence[str]) -> None:
        with self._lock:
            self._queues.setdefault(name, deque())
            self._dead.setdefault(name, [])
            for key in routing_keys:
                self._bindings.setdefault(key, set()).add(name)

    def _take(self, name: str, timeout: float) -> _Message | None:
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._queues[name]), timeout):
                return None
            return self._queues[name].popleft()

    def _requeue(self, name: str, message: _Message, reason: str) -> None:
        with self._lock:
            if message.attempt >= self.max_deliveries:
                self._dead_letter(name, message, f"{reason} (after {message.attempt} deliveries)")
                return
            self._queues[name].appendleft(
                _Message(message.routing_key, message.body, message.attempt + 1)
            )
            self._lock.notify_all()

    def _dead_letter(self, name: str, message: _Message, reason: str) -> None:
        with self._lock:
            self._dead[name].append(DeadLetter(message.routing_key, message.body, reason))
        log.warning("dead-lettered", extra={"queue": name, "reason": reason})

    def _unsubscribe(self, subscription: _Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)


class InMemoryPublisher(MessagePublisher):
    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker

    def publish(self, event: Event) -> None:
        body = encode(event)
        if event.kind is DeliveryKind.STATUS:
            with self._broker._lock:
                subscribers = list(self._broker._subscribers)
            for subscription in subscribers:
                subscription.inbox.put(body)
        else:
            self._broker.publish_raw(event.routing_key, body)


class InMemoryDelivery(Delivery):
    def __init__(self, queue: InMemoryWorkQueue, message: _Message, event: Event) -> None:
        super().__init__(event, message.attempt)
        self._queue = queue
        self._message = message

    def ack(self) -> None:
        self._queue._settle(self._message)

    def retry(self, reason: str) -> None:
        if self._queue._settle(self._message):
            self._queue.broker._requeue(self._queue.name, self._message, reason)

    def dead_letter(self, reason: str) -> None:
        if self._queue._settle(self._message):
            self._queue.broker._dead_letter(self._queue.name, self._message, reason)


class InMemoryWorkQueue(WorkQueue):
    def __init__(self, broker: InMemoryBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self._unsettled: list[_Message] = []
        self._closed = False

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError("work queue is closed")
        message = self.broker._take(self.name, timeout)
        while message is not None:
            try:
                event = decode(message.body)
            except MalformedMessage as exc:
                self.broker._dead_letter(self.name, message, str(exc))
                message = self.broker._take(self.name, 0)
                continue
            self._unsettled.append(message)
            return InMemoryDelivery(self, message, event)
        return None

    def close(self) -> None:
        """Unsettled deliveries go back to the queue, as a dropped connection would."""
        self._closed = True
        for message in reversed(self._unsettled):
            self.broker._requeue(self.name, message, "consumer closed before settling")
        self._unsettled.clear()

    def _settle(self, message: _Message) -> bool:
        if message in self._unsettled:
            self._unsettled.remove(message)
            return True
        return False


class _Subscription(Subscription):
    def __init__(self, broker: InMemoryBroker, on_event: StatusListener) -> None:
        self._broker = broker
        self._on_event = on_event
        self.inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._pump, name="memory-status", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._broker._unsubscribe(self)
        self.inbox.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _pump(self) -> None:
        while (body := self.inbox.get()) is not None:
            try:
                event = decode(body)
            except MalformedMessage as exc:
                log.warning("dropped a malformed status message: %s", exc)
                continue
            if isinstance(event, StatusEvent):
                try:
                    self._on_event(event)
                except Exception:  # one listener's bug must not end the subscription
                    log.exception("status listener failed")
