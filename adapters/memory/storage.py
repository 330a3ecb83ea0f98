"""FileStorage in a dictionary."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from domain.ports import FileStorage
from domain.ports.storage import FileTooLarge


class InMemoryFileStorage(FileStorage):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.areas: set[str] = set()

    def save(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> int:
        parts: list[bytes] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise FileTooLarge(f"more than {max_bytes} bytes")
            parts.append(chunk)
        with self._lock:
            self.files[key] = b"".join(parts)
        return size

    def prepare_area(self, prefix: str) -> None:
        with self._lock:
            self.areas.add(prefix)

    def read(self, key: str) -> bytes:
        with self._lock:
            if key not in self.files:
                raise FileNotFoundError(key)
            return self.files[key]

    def locate(self, key: str) -> str:
        return f"memory://{key}"
