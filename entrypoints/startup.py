"""Start-up checks: wait a bounded time for the database and the broker to answer."""

from __future__ import annotations

import logging
import threading
import time

from adapters.container import Container

log = logging.getLogger(__name__)


def wait_for_dependencies(
    container: Container, *, deadline: float, stop: threading.Event
) -> str | None:
    """``None`` once the store and the broker answer, else the last problem at ``deadline``."""
    delay = 0.5
    while True:
        problem = _probe(container)
        if problem is None:
            return None
        if time.monotonic() + delay > deadline or stop.is_set():
            return problem
        log.warning("waiting for dependencies: %s (retrying in %.1fs)", problem, delay)
        stop.wait(delay)
        delay = min(delay * 2, 5.0)


def _probe(container: Container) -> str | None:
    try:
        container.repository().get_workspace(0)
    except Exception as exc:  # any failure here is reported to the operator as it is
        return f"database: {_first_line(exc)}"
    try:
        container.publisher()
    except Exception as exc:  # likewise for the broker
        return f"broker: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
