"""FileStorage on a local directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from domain.ports import FileStorage
from domain.ports.storage import FileTooLarge


class LocalFileStorage(FileStorage):
    """Files under one root directory; a key is a relative path that may not leave it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def save(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed, so no reader ever sees half a file.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        size = 0
        try:
            with partial.open("wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileTooLarge(f"more than {max_bytes} bytes")
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return size

    def prepare_area(self, prefix: str) -> None:
        self._path(prefix).mkdir(parents=True, exist_ok=True)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def locate(self, key: str) -> str:
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"storage key {key!r} leaves the storage root")
        return path
