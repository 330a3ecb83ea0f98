"""The status broadcast in process: each subscription pumps its own inbox on its own thread."""

from __future__ import annotations

import queue
import threading

from adapters.memory.connection import InMemoryConnection
from adapters.messaging import PLAIN, EventCodec, deliver_status, subscription_thread_name
from domain.ports import Subscription
from domain.ports.messaging import StatusListener


class InMemorySubscription(Subscription):
    """Hears every status body broadcast on the connection while it is subscribed."""

    def __init__(
        self, connection: InMemoryConnection, on_event: StatusListener, *, codec: EventCodec = PLAIN
    ) -> None:
        self._connection = connection
        self._codec = codec
        self._on_event = on_event
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._pump, name=subscription_thread_name("memory", "local"), daemon=True
        )
        self._thread.start()
        connection.subscribe(self)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def offer(self, body: bytes) -> None:
        self._inbox.put(body)

    def close(self) -> None:
        self._connection.unsubscribe(self)
        self._inbox.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _pump(self) -> None:
        while (body := self._inbox.get()) is not None:
            deliver_status(body, self._on_event, self._codec)
