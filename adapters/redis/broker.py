"""Redis transport: Streams with consumer groups for work, pub/sub for status broadcasts.

Keys, all under ``namespace``:

* ``{ns}:work:{routing_key}`` — a Stream per work routing key; every work queue bound to the
  key reads it through a consumer group named after the queue;
* ``{ns}:dead:{queue}`` — a Stream of the entries the queue set aside, with the reason;
* ``{ns}:status`` — the pub/sub channel of status events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from adapters.backoff import Backoff
from adapters.redis.scripts import CLAIM_IDLE, SETTLE
from domain.errors import MalformedMessage, PublishFailed
from domain.events import EVENT_TYPES, DeliveryKind, Event, StatusEvent, decode, encode
from domain.ports import Delivery, MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

# Errors after which the connection is gone and a new one may succeed.
_LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# The longest a single blocking read lasts, so that idle entries are claimed while waiting.
_READ_SLICE_SECONDS = 1.0
_SOCKET_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RedisDeadLetter:
    """An entry a work queue set aside, as kept in its dead-letter stream."""

    entry_id: str
    routing_key: str
    body: bytes
    reason: str


class RedisBroker(MessageBroker):
    """Work queues on Redis Streams and a status broadcast on Redis pub/sub."""

    def __init__(
        self,
        url: str,
        *,
        max_deliveries: int = 5,
        claim_idle_seconds: float = 30.0,
        namespace: str = "insighthub",
        health_check_seconds: int = 5,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        if claim_idle_seconds <= 0:
            raise ValueError(f"claim_idle_seconds must be positive, got {claim_idle_seconds}")
        self.max_deliveries = max_deliveries
        self.claim_idle_seconds = claim_idle_seconds
        self.namespace = namespace
        self.health_check_seconds = health_check_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        # No retries inside the client: each caller decides whether to retry, so a publish
        # never blocks for long and a lost link surfaces where it can be handled.
        self.client = redis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=connect_timeout_seconds,
            socket_keepalive=True,
            health_check_interval=health_check_seconds,
        )
        self._claim_idle = self.client.register_script(CLAIM_IDLE)
        self._settle = self.client.register_script(SETTLE)
        self._lock = threading.Lock()
        self._subscriptions: list[RedisSubscription] = []
        self._queues: list[RedisWorkQueue] = []

    def work_stream(self, routing_key: str) -> str:
        return f"{self.namespace}:work:{routing_key}"

    def dead_letter_stream(self, queue: str) -> str:
        return f"{self.namespace}:dead:{queue}"

    @property
    def status_channel(self) -> str:
        return f"{self.namespace}:status"

    def publisher(self) -> MessagePublisher:
        return RedisPublisher(self)

    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        if not routing_keys:
            raise ValueError(f"work queue {name!r} needs at least one routing key")
        queue = RedisWorkQueue(self, name, routing_keys)
        with self._lock:
            self._queues.append(queue)
        return queue

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = RedisSubscription(self, on_event, on_resync)
        subscription.start(self.connect_timeout_seconds)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Route a body as it is, valid or not: how a foreign producer would."""
        event_type = EVENT_TYPES.get(routing_key)
        kind = event_type.kind if event_type is not None else DeliveryKind.WORK
        self.send(routing_key, kind, body)

    def send(self, routing_key: str, kind: DeliveryKind, body: bytes) -> None:
        """Hand ``body`` to Redis, retrying once on a fresh connection; else ``PublishFailed``."""
        failure: RedisError | OSError | None = None
        for _ in range(2):
            try:
                if kind is DeliveryKind.WORK:
                    self.client.xadd(self.work_stream(routing_key), {"body": body})
                else:
                    self.client.publish(self.status_channel, body)
                return
            except _LINK_ERRORS as exc:
                # The pool dropped the broken connection; the next attempt opens a new one.
                failure = exc
            except RedisError as exc:
                failure = exc
                break
        raise PublishFailed(f"redis did not take {routing_key}: {failure}") from failure

    def send_many(self, messages: Sequence[tuple[str, DeliveryKind, bytes]]) -> None:
        """Hand every ``(routing_key, kind, body)`` to Redis in one round trip, in order.

        ``PublishFailed`` unless Redis took every one; after a lost link the whole batch is
        sent again once on a fresh connection (some may then be there twice: at least once).
        """
        if not messages:
            return
        failure: RedisError | OSError | None = None
        for _ in range(2):
            # No MULTI: order within the batch is kept by the one connection, and atomicity
            # is not needed when a failure re-sends the whole batch anyway.
            pipeline = self.client.pipeline(transaction=False)
            for routing_key, kind, body in messages:
                if kind is DeliveryKind.WORK:
                    pipeline.xadd(self.work_stream(routing_key), {"body": body})
                else:
                    pipeline.publish(self.status_channel, body)
            try:
                pipeline.execute(raise_on_error=True)
                return
            except _LINK_ERRORS as exc:
                failure = exc
            except RedisError as exc:
                failure = exc
                break
            finally:
                pipeline.reset()
        raise PublishFailed(
            f"redis did not take a batch of {len(messages)} messages: {failure}"
        ) from failure

    def dead_letters(self, queue: str) -> list[RedisDeadLetter]:
        """What was set aside from ``queue``, oldest first, left in place."""
        entries = _entries(self.client.xrange(self.dead_letter_stream(queue)))
        return [
            RedisDeadLetter(
                entry_id=entry_id,
                routing_key=_text(fields.get(b"routing_key", b"")),
                body=fields.get(b"body", b""),
                reason=_text(fields.get(b"reason", b"")),
            )
            for entry_id, fields in entries
        ]

    def claim_idle(self, stream: str, group: str, consumer: str) -> tuple[str, bytes, int] | None:
        """Take over one entry idle past the claim timeout: its id, body and delivery count."""
        idle_ms = max(1, round(self.claim_idle_seconds * 1000))
        claimed = self._claim_idle(keys=[stream], args=[group, consumer, idle_ms])
        if not claimed:
            return None
        entry_id, flat_fields, deliveries = claimed
        ((entry, fields),) = _entries([(entry_id, _pairs(flat_fields))])
        return entry, fields.get(b"body", b""), int(deliveries)

    def settle(
        self,
        stream: str,
        group: str,
        consumer: str,
        entry_id: str,
        action: str,
        *,
        reason: str = "",
        routing_key: str = "",
        body: bytes = b"",
    ) -> str:
        """Run the settle script; see ``adapters.redis.scripts.SETTLE`` for the actions."""
        idle_ms = max(1, round(self.claim_idle_seconds * 1000)) + 1
        outcome = self._settle(
            keys=[stream, self.dead_letter_stream(group)],
            args=[group, consumer, entry_id, action, reason, idle_ms, routing_key, body],
        )
        return _text(outcome)

    def close(self) -> None:
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
            queues, self._queues = self._queues, []
        for subscription in subscriptions:
            subscription.close()
        for queue in queues:
            queue.close()
        self.client.close()

    def forget(self, subscription: RedisSubscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)


class RedisPublisher(MessagePublisher):
    """Adds work requests to their stream and publishes status events on the channel."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    def publish(self, event: Event) -> None:
        self._broker.send(event.routing_key, event.kind, encode(event))

    def publish_many(self, events: Sequence[Event]) -> None:
        self._broker.send_many([(event.routing_key, event.kind, encode(event)) for event in events])


class RedisDelivery(Delivery):
    """One stream entry delivered to this consumer; settling it runs one atomic script."""

    def __init__(
        self,
        queue: RedisWorkQueue,
        stream: str,
        entry_id: str,
        body: bytes,
        *,
        event: Event,
        attempt: int,
    ) -> None:
        super().__init__(event, attempt)
        self._queue = queue
        self._stream = stream
        self._entry_id = entry_id
        self._body = body
        self._settled = False

    def ack(self) -> None:
        self._settle("ack")

    def retry(self, reason: str) -> None:
        if self.attempt >= self._queue.broker.max_deliveries:
            self._settle("dead", f"{reason} (after {self.attempt} deliveries)")
        else:
            self._settle("retry", reason)

    def dead_letter(self, reason: str) -> None:
        self._settle("dead", reason)

    def _settle(self, action: str, reason: str = "") -> None:
        if self._settled:
            return
        self._settled = True
        self._queue.settle(self._stream, self._entry_id, action, reason, self._body)


class RedisWorkQueue(WorkQueue):
    """A consumer in the group ``name`` of the stream of each bound routing key."""

    def __init__(self, broker: RedisBroker, name: str, routing_keys: Sequence[str]) -> None:
        self.broker = broker
        self.name = name
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._streams = {broker.work_stream(key): key for key in routing_keys}
        self._backoff = Backoff()
        self._closed = False
        try:
            self._declare()
        except _LINK_ERRORS as exc:
            # Declared again on the first receive that reaches the server.
            log.warning("redis unreachable while declaring %s: %s", name, exc)

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError("work queue is closed")
        deadline = time.monotonic() + timeout
        while True:
            try:
                delivery = self._next(deadline)
                self._backoff.reset()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The server lost the group (a restart without persistence): declare it again.
                log.warning("redis lost the group of %s; declaring it again", self.name)
                self._declare_quietly()
                delivery = None
            except _LINK_ERRORS as exc:
                pause = min(self._backoff.next_delay(), max(0.0, deadline - time.monotonic()))
                log.warning("redis link lost while receiving from %s: %s", self.name, exc)
                time.sleep(pause)
                self._declare_quietly()
                delivery = None
            if delivery is not None or time.monotonic() >= deadline:
                return delivery

    def close(self) -> None:
        """Stop consuming; unsettled entries stay pending and are claimed after the idle time."""
        if self._closed:
            return
        self._closed = True
        try:
            for stream in self._streams:
                pending = self.broker.client.xpending_range(
                    stream, self.name, min="-", max="+", count=1, consumername=self.consumer
                )
                if not pending:
                    self.broker.client.xgroup_delconsumer(stream, self.name, self.consumer)
        except RedisError as exc:
            log.info("could not remove consumer %s: %s", self.consumer, exc)

    def settle(self, stream: str, entry_id: str, action: str, reason: str, body: bytes) -> None:
        """Settle an entry, retrying once on a fresh connection; a failure leaves it pending."""
        for attempt in (1, 2):
            try:
                outcome = self.broker.settle(
                    stream,
                    self.name,
                    self.consumer,
                    entry_id,
                    action,
                    reason=reason,
                    routing_key=self._streams[stream],
                    body=body,
                )
                break
            except _LINK_ERRORS as exc:
                if attempt == 2:
                    # Still pending: it is claimed again after the idle time, so nothing is lost.
                    log.warning("could not %s entry %s of %s: %s", action, entry_id, stream, exc)
                    return
            except RedisError as exc:
                # Typically the server lost the group in a restart, and the entry with it.
                log.warning("could not %s entry %s of %s: %s", action, entry_id, stream, exc)
                return
        if outcome == "dead":
            log.warning(
                "dead-lettered", extra={"queue": self.name, "entry": entry_id, "reason": reason}
            )
        elif outcome in ("gone", "taken") and action != "ack":
            log.info("entry %s of %s was %s before its %s", entry_id, stream, outcome, action)

    def _next(self, deadline: float) -> Delivery | None:
        """One claim-then-read round, at most one read slice long."""
        for stream in self._streams:
            claimed = self.broker.claim_idle(stream, self.name, self.consumer)
            if claimed is not None:
                entry_id, body, deliveries = claimed
                if deliveries > self.broker.max_deliveries:
                    self.settle(
                        stream,
                        entry_id,
                        "dead",
                        f"not settled after {deliveries - 1} deliveries",
                        body,
                    )
                    return None
                return self._delivery(stream, entry_id, body, deliveries)
        wait = min(_READ_SLICE_SECONDS, deadline - time.monotonic())
        read: object = self.broker.client.xreadgroup(
            self.name,
            self.consumer,
            dict.fromkeys(self._streams, ">"),
            count=1,
            block=max(1, round(wait * 1000)) if wait > 0 else None,
        )
        for raw_stream, raw_entries in _batches(read):
            for entry_id, fields in _entries(raw_entries):
                return self._delivery(_text(raw_stream), entry_id, fields.get(b"body", b""), 1)
        return None

    def _delivery(self, stream: str, entry_id: str, body: bytes, attempt: int) -> Delivery | None:
        try:
            event = decode(body)
        except MalformedMessage as exc:
            self.settle(stream, entry_id, "dead", str(exc), body)
            return None
        if event.routing_key != self._streams[stream]:
            self.settle(
                stream,
                entry_id,
                "dead",
                f"a {event.routing_key} event on the stream of {self._streams[stream]}",
                body,
            )
            return None
        return RedisDelivery(self, stream, entry_id, body, event=event, attempt=attempt)

    def _declare(self) -> None:
        for stream in self._streams:
            try:
                self.broker.client.xgroup_create(stream, self.name, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _declare_quietly(self) -> None:
        with contextlib.suppress(*_LINK_ERRORS):
            self._declare()


class RedisSubscription(Subscription):
    """A pub/sub subscription to the status channel, kept alive by a thread of its own."""

    def __init__(
        self,
        broker: RedisBroker,
        on_event: StatusListener,
        on_resync: Callable[[], None] | None,
    ) -> None:
        self._broker = broker
        self._on_event = on_event
        self._on_resync = on_resync
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-status", daemon=True)

    @property
    def alive(self) -> bool:
        return self._subscribed.is_set() and not self._stop.is_set()

    def start(self, timeout: float) -> None:
        """Start listening; returns once the server has confirmed the subscription."""
        self._thread.start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise ConnectionError(
                f"redis did not confirm the subscription to {self._broker.status_channel} "
                f"within {timeout}s"
            )

    def close(self) -> None:
        self._stop.set()
        self._broker.forget(self)
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = Backoff()
        had_gap = False
        while not self._stop.is_set():
            pubsub = PubSub(self._broker.client.connection_pool)
            try:
                self._subscribe(pubsub)
                backoff.reset()
                if had_gap and self._on_resync is not None:
                    self._notify(self._on_resync)
                self._listen(pubsub)
            except (RedisError, OSError) as exc:
                if not self._stop.is_set():
                    log.warning("redis status subscription lost: %s", exc)
                # Only a subscription that was up can have missed events.
                had_gap = had_gap or self._subscribed.is_set()
            finally:
                self._subscribed.clear()
                pubsub.close()
            self._stop.wait(backoff.next_delay())

    def _subscribe(self, pubsub: PubSub) -> None:
        pubsub.subscribe(self._broker.status_channel)
        deadline = time.monotonic() + self._broker.connect_timeout_seconds
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "subscribe":
                self._subscribed.set()
                return
            if time.monotonic() > deadline:
                raise RedisTimeoutError("no subscription confirmation")

    def _listen(self, pubsub: PubSub) -> None:
        # redis-py pings an idle connection every health-check interval but drops the replies,
        # so a silent link is caught here: ping, and give up when nothing at all comes back.
        interval = max(1, self._broker.health_check_seconds)
        last_heard = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message["type"] == "message":
                    self._deliver(message["data"])
            elif now - last_heard > 3 * interval:
                raise RedisTimeoutError(f"nothing heard for {now - last_heard:.0f}s")
            if now - last_ping > interval:
                pubsub.ping("insighthub-status")
                last_ping = now

    def _deliver(self, body: Any) -> None:
        try:
            event = decode(body)
        except MalformedMessage as exc:
            log.warning("dropped a malformed status message: %s", exc)
            return
        if not isinstance(event, StatusEvent):
            log.warning("dropped a %s event on the status channel", event.routing_key)
            return
        self._notify(lambda: self._on_event(event))

    @staticmethod
    def _notify(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # one listener's bug must not end the subscription
            log.exception("status listener failed")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text from redis, got {value!r}")


def _pairs(flat: Sequence[object]) -> dict[object, object]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _batches(raw: object) -> list[tuple[object, object]]:
    """The (stream, entries) pairs of an XREADGROUP reply, in either protocol's shape."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return list(raw.items())
    if isinstance(raw, list):
        return [(stream, entries) for stream, entries in raw]
    raise TypeError(f"expected an XREADGROUP reply from redis, got {raw!r}")


def _entries(raw: object) -> list[tuple[str, dict[bytes, bytes]]]:
    """Stream entries as redis-py returns them, checked: (id, {field: value}) pairs."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise TypeError(f"expected stream entries from redis, got {raw!r}")
    entries: list[tuple[str, dict[bytes, bytes]]] = []
    for entry_id, fields in raw:
        # An entry deleted while pending comes back without fields.
        checked = {
            key: value
            for key, value in (fields or {}).items()
            if isinstance(key, bytes) and isinstance(value, bytes)
        }
        entries.append((_text(entry_id), checked))
    return entries
