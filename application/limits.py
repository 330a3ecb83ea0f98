"""Rate limits: a token bucket, and one bucket per key (a user, a socket)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Clock = Callable[[], float]


class TokenBucket:
    """Allows ``capacity`` actions at once and ``rate`` more per second after that."""

    __slots__ = ("_at", "_capacity", "_clock", "_rate", "_tokens")

    def __init__(self, *, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError(
                f"a bucket needs a positive rate and capacity >= 1 (got {rate}, {capacity})"
            )
        self._rate = rate
        self._capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def take(self) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class RateLimiter(Generic[K]):
    """One ``TokenBucket`` per key, thread-safe; beyond ``max_keys`` the idlest is forgotten."""

    def __init__(
        self,
        *,
        per_second: float,
        burst: float,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._per_second = per_second
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: OrderedDict[K, TokenBucket] = OrderedDict()
        TokenBucket(rate=per_second, capacity=burst, clock=clock)  # refuse bad bounds now

    @classmethod
    def per_minute(cls, count: int, *, clock: Clock = time.monotonic) -> RateLimiter[K]:
        """``count`` actions a minute, all of them at once if need be."""
        return cls(per_second=count / 60, burst=count, clock=clock)

    def take(self, key: K) -> float:
        """Spend one of ``key``'s tokens: 0.0 when allowed, else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(rate=self._per_second, capacity=self._burst, clock=self._clock)
                self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            wait = bucket.take()
            # The least recently active key goes first: by then its bucket is all but full.
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait
