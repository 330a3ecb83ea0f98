"""UserUsage in a dictionary, under a lock."""

from __future__ import annotations

import threading

from domain.ports.usage import Usage, UserUsage


class InMemoryUserUsage(UserUsage):
    """Every user's usage for as long as this object lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[int, Usage] = {}

    def reserve(self, user_id: int, added: Usage, *, limit: Usage) -> Usage | None:
        with self._lock:
            before = self._usage.get(user_id, Usage())
            after = Usage(before.documents + added.documents, before.bytes + added.bytes)
            if after.documents > limit.documents or after.bytes > limit.bytes:
                return None
            self._usage[user_id] = after
            return before

    def release(self, user_id: int, taken: Usage) -> None:
        with self._lock:
            before = self._usage.get(user_id, Usage())
            self._usage[user_id] = Usage(
                max(0, before.documents - taken.documents), max(0, before.bytes - taken.bytes)
            )

    def of(self, user_id: int) -> Usage:
        with self._lock:
            return self._usage.get(user_id, Usage())
