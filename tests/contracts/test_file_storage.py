"""The FileStorage contract, on disk and in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.files.local import LocalFileStorage
from adapters.memory.storage import InMemoryFileStorage
from domain.ports import FileStorage
from domain.ports.storage import FileTooLarge


@pytest.fixture(params=["local", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> FileStorage:
    if request.param == "local":
        return LocalFileStorage(tmp_path / "files")
    return InMemoryFileStorage()


def test_streamed_bytes_come_back_whole(storage: FileStorage) -> None:
    assert storage.save("1/a.txt", [b"hello ", b"world"]) == 11
    assert storage.read("1/a.txt") == b"hello world"
    assert "1/a.txt" in storage.locate("1/a.txt")


def test_past_the_limit_nothing_is_kept(storage: FileStorage) -> None:
    with pytest.raises(FileTooLarge):
        storage.save("1/big.txt", [b"12345", b"67890", b"x"], max_bytes=10)
    with pytest.raises(FileNotFoundError):
        storage.read("1/big.txt")


def test_a_missing_file_is_not_found(storage: FileStorage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read("9/none.txt")


def test_preparing_an_area_is_idempotent(storage: FileStorage) -> None:
    storage.prepare_area("7")
    storage.prepare_area("7")
    storage.save("7/a.txt", [b"x"])
    assert storage.read("7/a.txt") == b"x"


def test_keys_cannot_leave_the_storage_root(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    for key in ("../outside.txt", "1/../../outside.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="leaves the storage root"):
            storage.save(key, [b"x"])
    assert not (tmp_path / "outside.txt").exists()
