"""What the core reports about its own work, for an adapter to expose (or to drop)."""

from __future__ import annotations

from abc import ABC, abstractmethod

ACKED = "acked"
RETRIED = "retried"
DEAD_LETTERED = "dead_lettered"


class Metrics(ABC):
    """Hears how long steps, deliveries and relay batches take and how they end."""

    @abstractmethod
    def step_finished(self, step: str, seconds: float, *, failed: bool) -> None:
        """One step of a document's job ran for ``seconds``."""

    @abstractmethod
    def delivery_settled(
        self, routing_key: str, seconds: float, *, outcome: str, attempt: int
    ) -> None:
        """A work request was handled in ``seconds`` and settled as ``outcome`` (``ACKED``…)."""

    @abstractmethod
    def batch_relayed(self, events: int, seconds: float) -> None:
        """The outbox relay published ``events`` events in one batch of ``seconds``."""

    @abstractmethod
    def event_refused(self, kind: str, reason: str) -> None:
        """A received ``kind`` (status or work) message was refused as untrusted: ``reason``."""

    @abstractmethod
    def limit_reached(self, limit: str) -> None:
        """A user's request was refused by the per-user limit ``limit``."""


class NoMetrics(Metrics):
    """Records nothing: for code run without an exposition (tests, one-off commands)."""

    def step_finished(self, step: str, seconds: float, *, failed: bool) -> None:
        pass

    def delivery_settled(
        self, routing_key: str, seconds: float, *, outcome: str, attempt: int
    ) -> None:
        pass

    def batch_relayed(self, events: int, seconds: float) -> None:
        pass

    def event_refused(self, kind: str, reason: str) -> None:
        pass

    def limit_reached(self, limit: str) -> None:
        pass
