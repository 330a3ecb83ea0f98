"""Per-user limits on uploads: how many documents and bytes, and how many uploads a minute.

A reservation counts an upload against the user's quotas *before* its file is stored, in one
atomic step of the ``UserUsage`` store (a conditional update in SQL), so concurrent uploads
of one user can never together exceed a quota, however many servers take them. An upload
that fails to be stored gives its reservation back; one that is stored keeps it at the size
actually written.
"""

from __future__ import annotations

import math
import time
from types import TracebackType

from application.limits import Clock, RateLimiter
from application.metrics import Metrics, NoMetrics
from application.problems import Problem, ProblemKind
from domain.ports.usage import Usage, UserUsage
from domain.result import Err, Ok, Result

QUOTA_DOCUMENTS = "QUOTA_DOCUMENTS"
QUOTA_BYTES = "QUOTA_BYTES"
UPLOADS_PER_MINUTE = "UPLOADS_PER_MINUTE"
# How long a client over a stored-data quota is told to wait: it stays over until it deletes.
QUOTA_RETRY_AFTER_SECONDS = 3600.0


class Reservation:
    """An upload's share of its user's quota; given back on leaving unless ``keep`` was called."""

    def __init__(self, usage: UserUsage | None, user_id: int, reserved: Usage) -> None:
        self._usage = usage
        self._user_id = user_id
        self._reserved = reserved
        self._kept = False

    def keep(self, stored_bytes: int) -> None:
        """The upload is stored with ``stored_bytes``: keep the reservation at that size."""
        self._kept = True
        unused = self._reserved.bytes - stored_bytes
        if unused > 0 and self._usage is not None:
            self._usage.release(self._user_id, Usage(0, unused))

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._kept and self._usage is not None:
            self._usage.release(self._user_id, self._reserved)

    @classmethod
    def unlimited(cls) -> Reservation:
        """A reservation of nothing, where no quota applies."""
        return cls(None, 0, Usage())


class Quotas:
    """Admits a user's upload within their rate and their document and byte quotas."""

    def __init__(
        self,
        usage: UserUsage,
        *,
        max_documents: int,
        max_bytes: int,
        uploads_per_minute: int,
        metrics: Metrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._usage = usage
        self._metrics = metrics or NoMetrics()
        self._limit = Usage(max_documents, max_bytes)
        self._uploads = RateLimiter[int].per_minute(uploads_per_minute, clock=clock)
        self._uploads_per_minute = uploads_per_minute

    def admit(self, user_id: int, size: int) -> Result[Reservation, Problem]:
        """Count one upload of at most ``size`` bytes, or say which limit refuses it."""
        admitted = self._admit(user_id, size)
        if isinstance(admitted, Err) and admitted.error.limit is not None:
            self._metrics.limit_reached(admitted.error.limit)
        return admitted

    def _admit(self, user_id: int, size: int) -> Result[Reservation, Problem]:
        wait = self._uploads.take(user_id)
        if wait > 0:
            return Err(
                limited(
                    UPLOADS_PER_MINUTE,
                    f"at most {self._uploads_per_minute} uploads a minute; try again shortly",
                    wait,
                )
            )
        added = Usage(1, size)
        before = self._usage.reserve(user_id, added, limit=self._limit)
        if before is not None:
            return Ok(Reservation(self._usage, user_id, added))
        current = self._usage.of(user_id)
        if current.documents + 1 > self._limit.documents:
            return Err(
                limited(
                    QUOTA_DOCUMENTS,
                    f"the quota of {self._limit.documents} documents is reached",
                    QUOTA_RETRY_AFTER_SECONDS,
                )
            )
        return Err(
            limited(
                QUOTA_BYTES,
                f"storing {size} more bytes would exceed the quota of {self._limit.bytes} bytes"
                f" ({current.bytes} used)",
                QUOTA_RETRY_AFTER_SECONDS,
            )
        )


def limited(limit: str, message: str, retry_after: float) -> Problem:
    """A refusal by the per-user limit named ``limit``, worth retrying after ``retry_after``."""
    return Problem(
        ProblemKind.LIMITED, message, limit=limit, retry_after=max(1, math.ceil(retry_after))
    )
