"""``insighthub`` whose file storage runs out of disk space in the middle of every upload.

Run as ``python -m tests.support.full_disk_server serve …``: the real command line, with the
storage replaced through ``bootstrap``'s overrides.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator

from adapters.files.local import LocalFileStorage


class FullDiskStorage(LocalFileStorage):
    """Local storage whose disk fills up after the first chunk of each file is written."""

    def save(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> int:
        return super().save(key, _full_after_first(chunks), max_bytes=max_bytes)


def _full_after_first(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def main(argv: list[str]) -> int:
    from entrypoints import cli

    storage = FullDiskStorage(os.environ["STORAGE_DIR"])
    return cli.main(argv, overrides={"storage": storage})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
