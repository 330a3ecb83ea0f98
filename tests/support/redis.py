"""Redis test helpers: raw publishing with a client of the test's own."""

from __future__ import annotations

import redis

from adapters.redis.topology import RedisTopology
from domain.events import is_status_routing_key


def publish_raw(url: str, topology: RedisTopology, routing_key: str, body: bytes) -> None:
    """Publish ``body`` on the status channel for a status key, else add it to the work stream."""
    client = redis.Redis.from_url(url)
    try:
        if is_status_routing_key(routing_key):
            client.publish(topology.status_channel, body)
        else:
            client.xadd(topology.work_stream(routing_key), {"body": body})
    finally:
        client.close()
