"""Per-user limits: token buckets, upload rates, and document and byte quotas."""

from __future__ import annotations

import errno
from collections.abc import Iterable

import pytest

from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.storage import InMemoryFileStorage
from adapters.memory.usage import InMemoryUserUsage
from adapters.settings import ConfigError, Settings
from application.documents import Documents
from application.limits import RateLimiter, TokenBucket
from application.problems import Problem, ProblemKind
from application.quotas import QUOTA_BYTES, QUOTA_DOCUMENTS, UPLOADS_PER_MINUTE, Quotas
from application.status_service import StatusService
from domain.entities import Document
from domain.ports.usage import Usage
from domain.result import Err, Result
from domain.status import WorkspaceStatus
from tests.fakes.messaging import RecordingPublisher
from tests.support.concurrency import all_at_once

USER = 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FullDisk(InMemoryFileStorage):
    """Storage whose disk is full: every save fails as ``write`` does with ENOSPC."""

    def save(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert bucket.take() > 0
    clock.now += 100
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refills to capacity only


def test_a_bucket_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=0, capacity=1)
    with pytest.raises(ValueError, match="positive rate"):
        RateLimiter[int](per_second=1, burst=0)


def test_each_key_has_its_own_bucket_and_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter[int].per_minute(2, clock=clock)
    assert [limiter.take(1), limiter.take(1)] == [0.0, 0.0]
    assert limiter.take(1) == pytest.approx(30.0)
    assert limiter.take(2) == 0.0
    bounded = RateLimiter[int](per_second=1, burst=1, clock=clock, max_keys=1)
    assert bounded.take(1) == 0.0
    assert bounded.take(2) == 0.0
    assert bounded.take(1) == 0.0  # forgotten, so it starts afresh


class World:
    def __init__(self, *, documents: int = 100, size: int = 10_000, per_minute: int = 100) -> None:
        self.clock = Clock()
        self.usage = InMemoryUserUsage()
        self.quotas = Quotas(
            self.usage,
            max_documents=documents,
            max_bytes=size,
            uploads_per_minute=per_minute,
            clock=self.clock,
        )
        self.repository = InMemoryStatusRepository()
        self.storage = InMemoryFileStorage()
        self.status = StatusService(self.repository, RecordingPublisher())
        self.documents = self.with_storage(self.storage)
        workspace = self.repository.add_workspace(user_id=USER, name="w")
        self.status.update_workspace_status(workspace.id, WorkspaceStatus.READY).unwrap()
        self.workspace_id = workspace.id

    def with_storage(self, storage: InMemoryFileStorage) -> Documents:
        return Documents(
            self.repository,
            self.status,
            storage,
            RecordingPublisher(),
            max_upload_bytes=5000,
            quotas=self.quotas,
        )

    def upload(
        self, content: bytes, *, sized: bool = True, documents: Documents | None = None
    ) -> Result[Document, Problem]:
        return (documents or self.documents).upload(
            user_id=USER,
            workspace_id=self.workspace_id,
            filename="a.txt",
            content=[content],
            size=len(content) if sized else None,
        )


def test_the_upload_over_the_document_quota_is_refused_and_nothing_is_kept() -> None:
    world = World(documents=2)
    assert world.upload(b"one").is_ok()
    assert world.upload(b"two").is_ok()
    refused = world.upload(b"three")
    assert isinstance(refused, Err)
    assert (refused.error.kind, refused.error.limit) == (ProblemKind.LIMITED, QUOTA_DOCUMENTS)
    assert refused.error.retry_after is not None
    assert refused.error.retry_after >= 1
    assert len(world.repository.list_documents(user_id=USER)) == 2
    assert world.usage.of(USER) == Usage(2, 6)


def test_the_upload_over_the_byte_quota_is_refused() -> None:
    world = World(size=100)
    assert world.upload(b"x" * 60).is_ok()
    refused = world.upload(b"x" * 41)
    assert isinstance(refused, Err)
    assert refused.error.limit == QUOTA_BYTES
    assert "100 bytes" in refused.error.message
    assert world.upload(b"x" * 40).is_ok()
    assert world.usage.of(USER) == Usage(2, 100)


def test_an_upload_of_unknown_size_reserves_the_upload_limit_and_keeps_what_it_stored() -> None:
    world = World(size=5010)  # the upload limit is 5000
    assert world.upload(b"x" * 10, sized=False).is_ok()
    assert world.usage.of(USER) == Usage(1, 10)
    assert world.upload(b"x" * 10, sized=False).is_ok()  # 10 used + 5000 reserved fits
    refused = world.upload(b"x", sized=False)  # 20 used + 5000 reserved would not
    assert isinstance(refused, Err)
    assert refused.error.limit == QUOTA_BYTES
    assert world.upload(b"x").is_ok()  # its size known, one byte fits
    assert world.usage.of(USER) == Usage(3, 21)


def test_the_upload_rate_is_limited_per_user() -> None:
    world = World(per_minute=2)
    assert world.upload(b"a").is_ok()
    assert world.upload(b"b").is_ok()
    refused = world.upload(b"c")
    assert isinstance(refused, Err)
    assert refused.error.limit == UPLOADS_PER_MINUTE
    assert refused.error.retry_after == 30
    world.clock.now += 30
    assert world.upload(b"c").is_ok()


def test_a_failed_store_gives_the_reservation_back() -> None:
    world = World(documents=1)
    full = world.with_storage(FullDisk())
    with pytest.raises(OSError, match="No space"):
        world.upload(b"data", documents=full)
    assert world.usage.of(USER) == Usage()
    assert world.repository.list_documents(user_id=USER) == []
    assert world.upload(b"data").is_ok()


def test_a_too_large_upload_gives_the_reservation_back() -> None:
    world = World()
    assert world.upload(b"x" * 5001, sized=False).is_err()
    assert world.usage.of(USER) == Usage()


def test_concurrent_uploads_of_one_user_never_exceed_the_quota() -> None:
    world = World(documents=5, per_minute=1000)
    results = all_at_once(20, lambda: world.upload(b"x").is_ok())
    assert results.count(True) == 5
    assert len(world.repository.list_documents(user_id=USER)) == 5
    assert world.usage.of(USER) == Usage(5, 5)


def test_settings_read_the_limits_with_generous_defaults_and_refuse_nonsense() -> None:
    defaults = Settings.from_environ({})
    assert (defaults.quota_documents, defaults.quota_bytes) == (10_000, 10 * 1024**3)
    assert (defaults.uploads_per_minute, defaults.client_frames_per_second) == (60, 50)
    given = Settings.from_environ({"QUOTA_DOCUMENTS": "3", "UPLOADS_PER_MINUTE": "7"})
    assert (given.quota_documents, given.uploads_per_minute) == (3, 7)
    for variable in (
        "QUOTA_DOCUMENTS",
        "QUOTA_BYTES",
        "UPLOADS_PER_MINUTE",
        "CLIENT_FRAMES_PER_SECOND",
    ):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_environ({variable: "0"})
        with pytest.raises(ConfigError, match=variable):
            Settings.from_environ({variable: "lots"})
