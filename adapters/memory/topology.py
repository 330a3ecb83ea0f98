"""The queues of an in-process deployment: every work queue of ``WORK_QUEUES``, declared at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.memory.connection import InMemoryConnection
from adapters.messaging import check_max_deliveries
from domain.events import WORK_QUEUES


@dataclass(frozen=True, slots=True)
class InMemoryTopology:
    """How many deliveries work gets, and how queues are declared on a connection."""

    max_deliveries: int

    def __post_init__(self) -> None:
        check_max_deliveries(self.max_deliveries)

    def declare_work_queue(
        self, connection: InMemoryConnection, name: str, routing_keys: Sequence[str]
    ) -> None:
        connection.declare(name, tuple(routing_keys))

    def declare_all(self, connection: InMemoryConnection) -> None:
        """Declare every work queue, so that work sent before any worker starts is kept."""
        for name, keys in WORK_QUEUES.items():
            self.declare_work_queue(connection, name, keys)
