"""One NATS connection, driven by its own event loop on a private thread.

nats-py is asyncio-only while the messaging ports are synchronous and called from worker
threads and server threadpools. Every call is handed to this loop and waited for with a
timeout, so a caller's thread (or event loop) never runs the client, and a caller that waits
too long gets an error instead of hanging.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10.0
# Between reconnect attempts to the same server. nats-py reconnects on its own and waits a
# fixed time between attempts, so the shared ``adapters.backoff`` policy cannot drive it.
RECONNECT_WAIT_SECONDS = 1.0
# A link that silently died (no reset) is noticed after about two missed pings.
PING_INTERVAL_SECONDS = 10
MAX_OUTSTANDING_PINGS = 2
CLOSE_TIMEOUT_SECONDS = 5.0


def redact(url: str) -> str:
    """``url`` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class NatsConnection:
    """A connection that reconnects forever, with a sync ``call`` into its event loop."""

    def __init__(self, url: str, *, name: str, api_timeout: float) -> None:
        self.url = url
        self._api_timeout = api_timeout
        self._reconnect_listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"nats-{name}", daemon=True)
        self._thread.start()
        try:
            self.client: Client = self.call(self._connect(name), CONNECT_TIMEOUT_SECONDS)
        except Exception as exc:
            self._stop_loop()
            raise ConnectionError(
                f"cannot connect to NATS at {redact(url)} within {CONNECT_TIMEOUT_SECONDS}s: "
                f"{exc or type(exc).__name__}"
            ) from exc
        self.jetstream: JetStreamContext = self.client.jetstream(timeout=api_timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        return not self._closed and self.client.is_connected

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the connection's loop and wait at most ``timeout`` seconds."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking NATS call from the connection's own loop would deadlock")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:
            coroutine.close()
            raise RuntimeError("the NATS connection is closed") from None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from NATS within {timeout}s") from None

    def on_reconnected(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` on the loop (it must not block) after every reconnect."""
        with self._listeners_lock:
            self._reconnect_listeners.append(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            if listener in self._reconnect_listeners:
                self._reconnect_listeners.remove(listener)

    def close(self) -> None:
        """Drain and close the connection, then stop the loop's thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self.call(self.client.drain(), CLOSE_TIMEOUT_SECONDS)
        except Exception as exc:  # reconnecting or already gone: close without draining
            log.debug("NATS drain failed (%s); closing", exc)
            try:
                self.call(self.client.close(), CLOSE_TIMEOUT_SECONDS)
            except Exception:
                log.warning("closing the NATS connection failed", exc_info=True)
        self._stop_loop()

    async def _connect(self, name: str) -> Client:
        return await nats.connect(
            self.url,
            name=name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_SECONDS,
            ping_interval=PING_INTERVAL_SECONDS,
            max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS connection error: %s", error or type(error).__name__)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("disconnected from NATS at %s; reconnecting", redact(self.url))

    async def _on_reconnected(self) -> None:
        # nats-py has replayed every subscription and flushed before calling this, so the
        # server knows them again: listeners can safely ask their users to reload.
        log.info("reconnected to NATS at %s", redact(self.url))
        with self._listeners_lock:
            listeners = list(self._reconnect_listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("a reconnect listener failed")

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        async def cancel_leftovers() -> None:
            current = asyncio.current_task()
            leftovers = [task for task in asyncio.all_tasks() if task is not current]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

        try:
            self.call(cancel_leftovers(), CLOSE_TIMEOUT_SECONDS)
        except Exception:
            log.debug("cancelling leftover NATS tasks failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CLOSE_TIMEOUT_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()
