"""Start-up checks: wait a bounded time for the database and the broker to answer."""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

from adapters.bootstrap import Services
from adapters.settings import Settings

log = logging.getLogger(__name__)

CONNECT_PROBE_SECONDS = 3.0
_DEFAULT_PORTS = {
    "amqp": 5672,
    "amqps": 5671,
    "nats": 4222,
    "tls": 4222,
    "redis": 6379,
    "rediss": 6379,
}


def wait_for_dependencies(
    services: Services, *, deadline: float, stop: threading.Event
) -> str | None:
    """``None`` once the store and the broker answer, else the last problem at ``deadline``.

    Retries with backoff until ``deadline``; returns early (with the problem) once ``stop``
    is set, so that a SIGTERM during start-up is not held up. The broker's address is also
    checked directly, for transports that connect lazily.
    """
    delay = 0.25
    while True:
        problem = _probe(services)
        if problem is None:
            return None
        if time.monotonic() + delay > deadline or stop.is_set():
            return problem
        log.warning("waiting for dependencies: %s (retrying in %.1fs)", problem, delay)
        stop.wait(delay)
        delay = min(delay * 2, 5.0)


def broker_address(settings: Settings) -> tuple[str, int] | None:
    """The host and port of the configured broker; ``None`` for one without a TCP address."""
    url = {
        "rabbitmq": settings.rabbitmq_url,
        "nats": settings.nats_url,
        "redis": settings.redis_url,
    }.get(settings.transport)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.hostname is None or parts.scheme not in _DEFAULT_PORTS:
        return None
    return parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]


def _probe(services: Services) -> str | None:
    try:
        services.repository.get_workspace(0)
    except Exception as exc:  # any failure here is reported to the operator as it is
        return f"database: {_first_line(exc)}"
    # Some transports connect lazily and then retry for ever in the background; a plain TCP
    # connection tells at once whether the broker is there at all.
    settings = services.settings
    address = broker_address(settings)
    if address is not None:
        try:
            with socket.create_connection(address, timeout=CONNECT_PROBE_SECONDS):
                pass
        except OSError as exc:
            host, port = address
            return f"broker: cannot reach {settings.transport} at {host}:{port}: {_reason(exc)}"
    try:
        services.connect_broker()
    except Exception as exc:  # likewise for the broker's own checks
        return f"broker: {_first_line(exc)}"
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
