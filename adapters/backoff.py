"""Exponential backoff with jitter, shared by every transport's reconnect loop."""

from __future__ import annotations

import random


class Backoff:
    """Delays doubling from ``initial`` up to ``maximum``, jittered; ``reset`` after a success."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
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
