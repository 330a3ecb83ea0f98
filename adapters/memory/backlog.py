"""Queue backlogs in process: the length of each queue and the age of its first message."""

from __future__ import annotations

import time

from adapters.memory.connection import InMemoryConnection
from domain.ports import Backlog, QueueBacklogs


class InMemoryQueueBacklogs(QueueBacklogs):
    """Reads the broker's queues as they stand; messages taken but unsettled are not told."""

    def __init__(self, connection: InMemoryConnection) -> None:
        self._connection = connection

    def of(self, queue: str) -> Backlog:
        waiting, head = self._connection.head(queue)
        age = None if head is None else max(0.0, time.monotonic() - head.published_at)
        return Backlog(queue=queue, waiting=waiting, oldest_age_seconds=age)
