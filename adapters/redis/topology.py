"""Where things live on Redis, all under one namespace:

* ``{ns}:work:{routing_key}``: a Stream per work routing key; every work queue bound to the
  key reads it through a consumer group named after the queue;
* ``{ns}:dead:{queue}``: a Stream of the entries the queue set aside, with the reason;
* ``{ns}:status``: the pub/sub channel of status events.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.exceptions import ResponseError

from adapters.messaging import DEAD, STATUS, WORK


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """The key names of one namespace, and how a work queue's consumer groups are declared."""

    namespace: str

    def work_stream(self, routing_key: str) -> str:
        return f"{self.namespace}:{WORK}:{routing_key}"

    def dead_letter_stream(self, queue: str) -> str:
        return f"{self.namespace}:{DEAD}:{queue}"

    @property
    def status_channel(self) -> str:
        return f"{self.namespace}:{STATUS}"

    def declare_work_queue(self, client: redis.Redis, name: str, streams: list[str]) -> None:
        """Create the consumer group ``name`` on each stream (and the stream), unless it exists."""
        for stream in streams:
            try:
                client.xgroup_create(stream, name, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
