"""Storage of uploaded files."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class FileTooLarge(Exception):
    """An upload exceeded the configured size limit; nothing of it was kept."""


class FileStorage(ABC):
    """Keeps uploaded files under opaque keys."""

    @abstractmethod
    def save(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> int:
        """Store streamed bytes under ``key``; their size, or ``FileTooLarge`` past the limit."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The whole content stored under ``key``; ``FileNotFoundError`` if there is none."""

    @abstractmethod
    def prepare_area(self, prefix: str) -> None:
        """Make room for the files that will be stored under ``prefix`` (a workspace's area)."""

    @abstractmethod
    def locate(self, key: str) -> str:
        """Where ``key`` lives, as a worker would name it (a path for disk storage)."""
