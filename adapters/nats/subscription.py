"""The status broadcast: a core NATS subscription per listening instance.

Messages are handed from the connection's loop to a thread of the subscription's own through
a bounded inbox, so a slow listener delays only itself: if it falls too far behind, events
are dropped and it is asked to resync once it catches up.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import queue
import threading
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription

from adapters.messaging import PLAIN, EventCodec, deliver_status, notify, subscription_thread_name
from adapters.nats.connection import NatsConnection
from adapters.nats.topology import NatsTopology
from domain.ports import Subscription
from domain.ports.messaging import StatusListener

log = logging.getLogger(__name__)

INBOX_LIMIT = 10_000
JOIN_TIMEOUT_SECONDS = 5.0


class _Signal(enum.Enum):
    RESYNC = "resync"
    STOP = "stop"


class NatsSubscription(Subscription):
    """Hears every status event of the namespace; ``on_resync`` after any gap."""

    def __init__(
        self,
        connection: NatsConnection,
        topology: NatsTopology,
        on_event: StatusListener,
        on_resync: Callable[[], None] | None,
        *,
        api_timeout: float,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._connection = connection
        self._codec = codec
        self._topology = topology
        self._on_event = on_event
        self._on_resync = on_resync
        self._api_timeout = api_timeout
        self._inbox: queue.Queue[bytes | _Signal] = queue.Queue(maxsize=INBOX_LIMIT)
        self._behind = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._pump,
            name=subscription_thread_name("nats", topology.namespace),
            daemon=True,
        )
        self._subscription = connection.call(self._subscribe(), 2 * api_timeout)
        connection.on_reconnected(self._on_reconnected)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return (
            not self._stopping.is_set() and self._connection.connected and self._thread.is_alive()
        )

    def close(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._connection.forget(self._on_reconnected)
        try:
            self._connection.call(self._subscription.unsubscribe(), self._api_timeout)
        except Exception as exc:  # the connection is going or gone: nothing left to stop
            log.debug("unsubscribing from status events failed: %s", exc)
        # When the inbox is full the pump sees the stop flag after the item it is on.
        with contextlib.suppress(queue.Full):
            self._inbox.put_nowait(_Signal.STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(JOIN_TIMEOUT_SECONDS)

    async def _subscribe(self) -> CoreSubscription:
        client = self._connection.client
        subscription = await client.subscribe(self._topology.status_subjects, cb=self._on_message)
        try:
            # Once the server answers the ping, it has registered the subscription.
            await client.flush(timeout=math.ceil(self._api_timeout))
        except BaseException:
            await subscription.unsubscribe()
            raise
        return subscription

    async def _on_message(self, message: Msg) -> None:
        self._offer(message.data)

    def _on_reconnected(self) -> None:
        self._offer(_Signal.RESYNC)

    def _offer(self, item: bytes | _Signal) -> None:
        if self._stopping.is_set():
            return
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            if not self._behind.is_set():
                log.warning(
                    "status listener is %d events behind; dropping, then resync", INBOX_LIMIT
                )
                self._behind.set()

    def _pump(self) -> None:
        while True:
            item = self._inbox.get()
            if self._stopping.is_set():
                return
            if item is _Signal.RESYNC:
                self._resync()
            elif isinstance(item, bytes):
                self._dispatch(item)
            if self._behind.is_set() and self._inbox.empty():
                self._behind.clear()
                self._resync()

    def _dispatch(self, body: bytes) -> None:
        deliver_status(body, self._on_event, self._codec)

    def _resync(self) -> None:
        notify(self._on_resync)
