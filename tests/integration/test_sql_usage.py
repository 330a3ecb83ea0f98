"""User usage on SQLite and PostgreSQL: reservations are atomic under concurrency."""

from __future__ import annotations

from adapters.sql.database import Database
from adapters.sql.usage import SqlUserUsage
from domain.ports.usage import Usage
from tests.support.concurrency import all_at_once

LIMIT = Usage(documents=5, bytes=1000)


def test_a_reservation_is_judged_against_the_limits_and_can_be_released(
    database: Database,
) -> None:
    usage = SqlUserUsage(database.session_factory)
    assert usage.of(1) == Usage()
    assert usage.reserve(1, Usage(1, 600), limit=LIMIT) == Usage()
    assert usage.reserve(1, Usage(1, 600), limit=LIMIT) is None
    assert usage.reserve(1, Usage(1, 400), limit=LIMIT) == Usage(1, 600)
    usage.release(1, Usage(0, 300))
    assert usage.of(1) == Usage(2, 700)
    assert usage.of(2) == Usage()


def test_concurrent_reservations_of_one_user_never_exceed_the_quota(database: Database) -> None:
    usage = SqlUserUsage(database.session_factory)
    granted = all_at_once(12, lambda: usage.reserve(7, Usage(1, 10), limit=LIMIT) is not None)
    assert granted.count(True) == 5
    assert usage.of(7) == Usage(5, 50)
