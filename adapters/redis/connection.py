"""The connection to Redis: one client (a pool) with timeouts and no hidden retries, and the
checked reading of the replies the transport's commands return."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# Errors after which the connection is gone and a new one may succeed.
LINK_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
SOCKET_TIMEOUT_SECONDS = 10.0


class RedisConnection:
    """A client whose pool opens connections as needed; a broken one is dropped from the pool."""

    def __init__(
        self, url: str, *, health_check_seconds: int, connect_timeout_seconds: float
    ) -> None:
        self.url = url
        self.health_check_seconds = health_check_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        # No retries inside the client: each caller decides whether to retry, so a publish
        # never blocks for long and a lost link surfaces where it can be handled.
        self.client = redis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=connect_timeout_seconds,
            socket_keepalive=True,
            health_check_interval=health_check_seconds,
        )

    def close(self) -> None:
        self.client.close()


def text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text from redis, got {value!r}")


def pairs(flat: Sequence[object]) -> dict[object, object]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def batches(raw: object) -> list[tuple[object, object]]:
    """The (stream, entries) pairs of an XREADGROUP reply, in either protocol's shape."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return list(raw.items())
    if isinstance(raw, list):
        return [(stream, entries) for stream, entries in raw]
    raise TypeError(f"expected an XREADGROUP reply from redis, got {raw!r}")


def entries(raw: object) -> list[tuple[str, dict[bytes, bytes]]]:
    """Stream entries as redis-py returns them, checked: (id, {field: value}) pairs."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise TypeError(f"expected stream entries from redis, got {raw!r}")
    checked: list[tuple[str, dict[bytes, bytes]]] = []
    for entry_id, fields in raw:
        # An entry deleted while pending comes back without fields.
        values = {
            key: value
            for key, value in (fields or {}).items()
            if isinstance(key, bytes) and isinstance(value, bytes)
        }
        checked.append((text(entry_id), values))
    return checked
