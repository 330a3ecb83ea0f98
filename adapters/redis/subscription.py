"""The status broadcast on Redis pub/sub: a subscription kept alive by a thread of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.backoff import Backoff
from adapters.messaging import PLAIN, EventCodec, deliver_status, notify, subscription_thread_name
from adapters.redis.connection import RedisConnection
from adapters.redis.topology import RedisTopology
from domain.ports import Subscription
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)


class RedisSubscription(Subscription):
    """A pub/sub subscription to the status channel; ``on_resync`` after any gap."""

    def __init__(
        self,
        connection: RedisConnection,
        topology: RedisTopology,
        on_event: StatusListener,
        on_resync: Callable[[], None] | None,
        *,
        on_close: Callable[[RedisSubscription], None] | None = None,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._connection = connection
        self._codec = codec
        self._channel = topology.status_channel
        self._on_event = on_event
        self._on_resync = on_resync
        self._on_close = on_close
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            name=subscription_thread_name("redis", topology.namespace),
            daemon=True,
        )

    @property
    def alive(self) -> bool:
        return self._subscribed.is_set() and not self._stop.is_set()

    def start(self, timeout: float) -> None:
        """Start listening; returns once the server has confirmed the subscription."""
        self._thread.start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise ConnectionError(
                f"redis did not confirm the subscription to {self._channel} within {timeout}s"
            )

    def close(self) -> None:
        self._stop.set()
        if self._on_close is not None:
            self._on_close(self)
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = Backoff()
        had_gap = False
        while not self._stop.is_set():
            pubsub = PubSub(self._connection.client.connection_pool)
            try:
                self._subscribe(pubsub)
                backoff.reset()
                if had_gap:
                    notify(self._on_resync)
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
        pubsub.subscribe(self._channel)
        deadline = time.monotonic() + self._connection.connect_timeout_seconds
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
        interval = max(1, self._connection.health_check_seconds)
        last_heard = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message["type"] == "message":
                    deliver_status(message["data"], self._on_event, self._codec)
            elif now - last_heard > 3 * interval:
                raise RedisTimeoutError(f"nothing heard for {now - last_heard:.0f}s")
            if now - last_ping > interval:
                pubsub.ping("insighthub-status")
                last_ping = now
