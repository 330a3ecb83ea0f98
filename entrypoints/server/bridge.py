"""The bridge from the broker's status broadcast to this instance's sockets.

The broker calls back on its own thread; each event is handed to the event loop with
``call_soon_threadsafe`` and nothing on the loop ever waits for broker IO. A supervisor
task keeps the subscription alive: it resubscribes with backoff when subscribing fails or
the subscription stays down, and sends every socket a fresh snapshot once events flow again,
since some may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from domain.events import StatusEvent
from domain.ports import MessageBroker, Subscription
from entrypoints.server.hub import SocketHub

log = logging.getLogger(__name__)


class StatusBridge:
    """Subscribes to status events and feeds them to a ``SocketHub``."""

    def __init__(
        self,
        broker: MessageBroker,
        hub: SocketHub,
        *,
        check_seconds: float = 0.5,
        first_backoff: float = 0.5,
        max_backoff: float = 10.0,
        resubscribe_after: float = 15.0,
    ) -> None:
        self._broker = broker
        self._hub = hub
        self._check_seconds = check_seconds
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._resubscribe_after = resubscribe_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: Subscription | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._was_alive = False
        self._down_since: float | None = None

    @property
    def alive(self) -> bool:
        """Whether status events are flowing into this instance right now."""
        subscription = self._subscription
        if subscription is None:
            return False
        try:
            return subscription.alive
        except Exception:  # a broken adapter must read as "down", not break the caller
            return False

    async def start(self) -> None:
        """Subscribe once (so a healthy server is ready at once), then keep it alive."""
        self._loop = asyncio.get_running_loop()
        await self._try_subscribe()
        self._was_alive = self.alive
        self._supervisor = asyncio.create_task(self._supervise(), name="status-bridge")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await run_in_threadpool(_close_quietly, subscription)
        self._loop = None

    def _on_event(self, event: StatusEvent) -> None:
        self._call_on_loop(lambda: self._hub.dispatch(event))

    def _on_resync(self) -> None:
        self._call_on_loop(self._hub.resync_all)

    def _call_on_loop(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        # The loop is gone only while shutting down, when nothing is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    async def _try_subscribe(self) -> bool:
        try:
            self._subscription = await run_in_threadpool(
                self._broker.subscribe_status, self._on_event, self._on_resync
            )
        except Exception as exc:  # any transport error: stay unready and try again later
            log.warning("status subscription failed: %s", exc)
            return False
        log.info("subscribed to status events")
        return True

    async def _supervise(self) -> None:
        backoff = self._first_backoff
        while True:
            if self._subscription is None:
                if not await self._try_subscribe():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = self._first_backoff
            alive = self.alive
            if alive and not self._was_alive:
                log.info("status events flowing again; resyncing every socket")
                self._hub.resync_all()
            if alive:
                self._down_since = None
            else:
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since >= self._resubscribe_after:
                    log.warning("status subscription down too long; subscribing anew")
                    subscription, self._subscription = self._subscription, None
                    if subscription is not None:
                        await run_in_threadpool(_close_quietly, subscription)
                    self._down_since = None
            self._was_alive = alive
            await asyncio.sleep(self._check_seconds)


def _close_quietly(subscription: Subscription) -> None:
    try:
        subscription.close()
    except Exception:  # closing a broken subscription may fail too; it is dropped either way
        log.warning("closing the status subscription failed", exc_info=True)
