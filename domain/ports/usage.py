"""What each user has stored: the count their quotas are judged by."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's documents and bytes, including those of uploads still being stored."""

    documents: int = 0
    bytes: int = 0


class UserUsage(ABC):
    """Keeps each user's usage; a reservation is judged and counted in one atomic step."""

    @abstractmethod
    def reserve(self, user_id: int, added: Usage, *, limit: Usage) -> Usage | None:
        """Add ``added`` to the user's usage unless the sum would exceed ``limit``; ``None``
        when it would (nothing added), else the usage before the addition."""

    @abstractmethod
    def release(self, user_id: int, taken: Usage) -> None:
        """Take back (part of) what a reservation added."""

    @abstractmethod
    def of(self, user_id: int) -> Usage:
        """The user's usage now."""
