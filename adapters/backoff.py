"""The one retry policy of every transport: exponential backoff with jitter, and retry-once.

Every reconnect loop waits ``Backoff`` delays between attempts, and every operation that may
meet a connection lost since its last use runs through ``retry_once``. (nats-py reconnects on
its own, waiting a fixed time between attempts; see ``adapters.nats.connection``.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INITIAL_DELAY_SECONDS = 0.1
MAXIMUM_DELAY_SECONDS = 5.0


class Backoff:
    """Delays doubling from ``initial`` up to ``maximum``, jittered; ``reset`` after a success."""

    def __init__(
        self, initial: float = INITIAL_DELAY_SECONDS, maximum: float = MAXIMUM_DELAY_SECONDS
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        """The delay to wait before the next attempt; each call lengthens the following one."""
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        # A random share (half to all) of the delay keeps clients from reconnecting in lockstep.
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next = self.initial


def retry_once(
    operation: Callable[[], T],
    *,
    transient: tuple[type[Exception], ...],
    backoff: Backoff,
    on_transient: Callable[[Exception, int], None] | None = None,
) -> T:
    """Run ``operation``; after a ``transient`` failure, wait one backoff delay and run it again.

    ``on_transient(error, attempt)`` hears each transient failure (say, to drop a dead
    connection). The second failure is raised; any other exception is raised at once.
    """
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(backoff.next_delay())
        try:
            result = operation()
        except transient as exc:
            if on_transient is not None:
                on_transient(exc, attempt)
            if attempt == 2:
                raise
            continue
        backoff.reset()
        return result
    raise AssertionError("unreachable")
