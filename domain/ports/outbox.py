"""The transactional outbox: events recorded with their status change, awaiting publication."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    event_id: str
    routing_key: str
    body: bytes


class Outbox(ABC):
    """Hands recorded events to a relay, in order per entity, each until it is marked sent."""

    @abstractmethod
    def relay(self, publish: Callable[[Sequence[OutboxEntry]], None], *, limit: int) -> int:
        """Claim up to ``limit`` unsent entries, ``publish`` them, mark them sent; how many.

        Entries another relay holds are skipped, and so is any entry whose entity has an
        earlier unsent one, which keeps per-entity order with several relays. If ``publish``
        raises, nothing is marked and the entries are offered again.
        """

    @abstractmethod
    def wait(self, timeout: float) -> None:
        """Return when new entries may have been recorded, or after ``timeout`` seconds."""

    @abstractmethod
    def prune(self, older_than_seconds: float) -> int:
        """Delete entries sent longer ago than that; how many."""

    def close(self) -> None:
        """Release any listening connection."""
