"""The NATS transport: work queues on JetStream, the status broadcast on core NATS subjects.

One broker owns one connection, driven by its own event loop on a private thread (see
``adapters.nats.connection``); every method here is synchronous and safe to call from any
thread except that loop's. Names of subjects, streams and consumers are in
``adapters.nats.topology``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext

from adapters.messaging import PLAIN, EventCodec, Opened, check_max_deliveries, check_positive
from adapters.nats.backlog import NatsQueueBacklogs
from adapters.nats.connection import NatsConnection, redact
from adapters.nats.dead_letters import NatsDeadLetters, dead_letter_exhausted
from adapters.nats.publisher import NatsPublisher
from adapters.nats.subscription import NatsSubscription
from adapters.nats.topology import NatsTopology, declare_consumer, declare_streams
from adapters.nats.work_queue import NatsWorkQueue
from domain.ports import MessageBroker, MessagePublisher, Subscription, WorkQueue
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 5.0

__all__ = ["NatsBroker", "NatsPublisher"]


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
        codec: EventCodec = PLAIN,
    ) -> None:
        self._codec = codec
        self.max_deliveries = check_max_deliveries(max_deliveries)
        self.ack_wait = check_positive("ack_wait", ack_wait)
        self.topology = NatsTopology(namespace)
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
        self._dead_letters = NatsDeadLetters(self._connection, self.topology)
        self._backlogs = NatsQueueBacklogs(self._connection, self.topology, api_timeout=api_timeout)
        self._lock = threading.Lock()
        self._closed = False
        self._opened = Opened()
        # Touched only on the connection's loop.
        self._watched_queues: dict[str, CoreSubscription] = {}

    @property
    def url(self) -> str:
        return self._connection.url

    def publisher(self) -> MessagePublisher:
        return NatsPublisher(
            self._connection, self.topology, api_timeout=self._api_timeout, codec=self._codec
        )

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
            codec=self._codec,
        )
        return self._opened.track(queue)

    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        self._check_open()
        subscription = NatsSubscription(
            self._connection,
            self.topology,
            on_event,
            on_resync,
            api_timeout=self._api_timeout,
            codec=self._codec,
        )
        return self._opened.track(subscription)

    def dead_letters(self) -> NatsDeadLetters:
        return self._dead_letters

    def backlogs(self) -> NatsQueueBacklogs:
        return self._backlogs

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._opened.close_all()
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
