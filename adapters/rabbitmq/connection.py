"""Connections to RabbitMQ: parameters, and a connection that lives on its own I/O thread.

pika's ``BlockingConnection`` is not thread-safe and only answers heartbeats while someone
drives its I/O. A consumer therefore owns one connection on one thread that does nothing but
drive it; other threads reach it through ``ConnectionLoop.call``, which hands a function to that
thread (``add_callback_threadsafe``) and waits for its result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import AMQPError

from adapters.backoff import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")

# Raised by pika on any connection or channel failure; OSError covers a socket that died
# before pika wrapped the failure.
LINK_ERRORS: tuple[type[Exception], ...] = (AMQPError, OSError)

# A dead peer is noticed within about two heartbeat intervals.
DEFAULT_HEARTBEAT_SECONDS = 30
# A broker that blocks publishers (memory or disk alarm) must not hang a publish forever.
DEFAULT_BLOCKED_TIMEOUT_SECONDS = 30.0
DEFAULT_SOCKET_TIMEOUT_SECONDS = 5.0
CALL_TIMEOUT_SECONDS = 30.0


class ConnectionLost(Exception):
    """The connection a call was meant for is gone; what it held will be redelivered."""


def connection_parameters(url: str, connection_name: str) -> pika.URLParameters:
    """``url``'s parameters, with defaults for what the URL leaves unsaid."""
    parameters = pika.URLParameters(url)
    given = set(parse_qs(urlsplit(url).query))
    if "heartbeat" not in given:
        parameters.heartbeat = DEFAULT_HEARTBEAT_SECONDS
    if "blocked_connection_timeout" not in given:
        parameters.blocked_connection_timeout = DEFAULT_BLOCKED_TIMEOUT_SECONDS
    if "socket_timeout" not in given:
        parameters.socket_timeout = DEFAULT_SOCKET_TIMEOUT_SECONDS
    if "connection_attempts" not in given:
        # Retrying is the caller's business (with its own backoff), not a hidden loop in pika.
        parameters.connection_attempts = 1
    parameters.client_properties = {"connection_name": connection_name}
    return parameters


def close_quietly(connection: BlockingConnection | None) -> None:
    """Close ``connection`` if it is still open; a connection already dead needs nothing."""
    if connection is None:
        return
    with contextlib.suppress(*LINK_ERRORS):
        if connection.is_open:
            connection.close()


class ConnectionLoop:
    """One connection driven by one thread, reopened with backoff whenever it is lost.

    ``on_open(connection, generation)`` sets up channels and consumers on each new connection
    (it runs on the loop's thread); ``on_ready`` runs once they are in place and ``on_lost``
    after a connection that was ready has gone.
    """

    def __init__(
        self,
        parameters: pika.URLParameters,
        *,
        name: str,
        on_open: Callable[[BlockingConnection, int], None],
        on_ready: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._parameters = parameters
        self._on_open = on_open
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._pending: set[Future[Any]] = set()
        self._generation = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def generation(self) -> int:
        """Which connection is current; a delivery from an older one can no longer be settled."""
        return self._generation

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._stop.is_set()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, function: Callable[[], T], *, generation: int | None = None) -> T:
        """Run ``function`` on the loop's thread, against the connection of ``generation``."""
        if self.on_loop_thread():
            return function()
        future: Future[T] = Future()
        with self._lock:
            connection = self._connection
            if connection is None or (generation is not None and generation != self._generation):
                raise ConnectionLost("the connection is gone")
            self._pending.add(future)

        def run() -> None:
            with self._lock:
                self._pending.discard(future)
            if future.done():
                return
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the waiting caller, which re-raises it
                future.set_exception(exc)

        try:
            connection.add_callback_threadsafe(run)
        except LINK_ERRORS as exc:
            with self._lock:
                self._pending.discard(future)
            raise ConnectionLost(f"the connection is gone: {exc!r}") from exc
        try:
            return future.result(CALL_TIMEOUT_SECONDS)
        except FutureTimeout:
            raise ConnectionLost("the connection did not answer in time") from None

    def close(self) -> None:
        """Stop the loop and close its connection; unsettled deliveries go back to the broker."""
        self._stop.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            # Wakes the loop at once instead of at its next poll.
            with contextlib.suppress(*LINK_ERRORS):
                connection.add_callback_threadsafe(lambda: None)
        if self.started and not self.on_loop_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            if self._serve_one_connection():
                backoff.reset()
            if not self._stop.is_set():
                self._stop.wait(backoff.next_delay())

    def _serve_one_connection(self) -> bool:
        """Open, set up and drive one connection until it fails; whether it became ready."""
        connection: BlockingConnection | None = None
        became_ready = False
        try:
            connection = BlockingConnection(self._parameters)
            self._generation += 1
            self._on_open(connection, self._generation)
            with self._lock:
                self._connection = connection
            self._ready.set()
            became_ready = True
            if self._on_ready is not None:
                self._on_ready()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.5)
        except LINK_ERRORS as exc:
            if not self._stop.is_set():
                log.warning(
                    "rabbitmq connection lost; reconnecting",
                    extra={"loop": self._thread.name, "error": repr(exc)},
                )
        except Exception:  # a bug in a callback must not end the loop for good
            log.exception("rabbitmq connection loop failed; reconnecting")
        finally:
            self._ready.clear()
            with self._lock:
                self._connection = None
                pending, self._pending = self._pending, set()
            for future in pending:
                if not future.done():
                    future.set_exception(ConnectionLost("the connection was lost"))
            close_quietly(connection)
        if became_ready and not self._stop.is_set() and self._on_lost is not None:
            self._on_lost()
        return became_ready


class RabbitMQConnection:
    """A lazily opened connection for callers that take turns under ``lock``.

    An idle ``BlockingConnection`` answers no heartbeats, so the broker may have closed it
    since its last use: ``get`` checks it first when it has been idle for a while, and opens a
    new one when it is dead.
    """

    # A connection in steady use handles heartbeats and the broker's frames in every blocking
    # call it makes (a confirmed publish waits for its confirm), and a close the broker sent
    # meanwhile fails the next call, which callers retry on a new connection: checking before
    # every use would only cost a poll.
    IDLE_CHECK_SECONDS = 1.0

    def __init__(
        self,
        parameters: pika.URLParameters,
        on_open: Callable[[BlockingConnection], None] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self._parameters = parameters
        self._on_open = on_open
        self._connection: BlockingConnection | None = None
        self._last_used = 0.0

    def get(self) -> BlockingConnection:
        """The open connection, opened or reopened as needed; call with ``lock`` held."""
        now = time.monotonic()
        idle, self._last_used = now - self._last_used, now
        if self._connection is not None:
            try:
                if self._connection.is_open:
                    if idle >= self.IDLE_CHECK_SECONDS:
                        # Handles pending heartbeats and notices a close the broker already sent.
                        self._connection.process_data_events(time_limit=0)
                    return self._connection
            except LINK_ERRORS as exc:
                log.info("rabbitmq connection found dead; reopening", extra={"error": repr(exc)})
            self.drop()
        connection = BlockingConnection(self._parameters)
        try:
            if self._on_open is not None:
                self._on_open(connection)
        except BaseException:
            close_quietly(connection)
            raise
        self._connection = connection
        return connection

    def drop(self) -> None:
        """Forget the current connection (closing it if it still looks open)."""
        connection, self._connection = self._connection, None
        close_quietly(connection)

    def close(self) -> None:
        with self.lock:
            self.drop()
