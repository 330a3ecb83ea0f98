"""Graceful stop for long-running processes: SIGTERM and SIGINT set an event."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event, *, what: str) -> threading.Event:
    """Set ``stop`` on SIGTERM or SIGINT; the returned event tells whether a signal came.

    ``what`` says, in the log line, what the process does on the way out.
    """
    signalled = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: %s", signal.Signals(signum).name, what)
        signalled.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return signalled
