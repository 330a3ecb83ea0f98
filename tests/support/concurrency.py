"""Running one call on many threads at once, to look for races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def all_at_once(count: int, call: Callable[[], T]) -> list[T]:
    """What ``call`` returned on each of ``count`` threads released together, in finishing order."""
    start = threading.Barrier(count)
    results: list[T] = []

    def run() -> None:
        start.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
