"""What an operator looks at: live workers, the actions operators took, and stuck work."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerBeat:
    """One worker process as it last reported itself; ``seen_at`` is set by the registry."""

    worker_id: str
    stage: str
    host: str
    pid: int
    current_documents: tuple[int, ...] = ()
    processed: int = 0
    failed: int = 0
    seen_at: datetime | None = None


class WorkerRegistry(ABC):
    """Where every worker says, at each heartbeat, that it is alive and what it is doing."""

    @abstractmethod
    def beat(self, beat: WorkerBeat) -> None:
        """Record (or replace) the worker's report, seen now."""

    @abstractmethod
    def live(self, within_seconds: float) -> list[WorkerBeat]:
        """The workers seen within the last ``within_seconds``, by stage then id."""

    @abstractmethod
    def forget(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorAction:
    """Something an operator (or the sweeper, on its own) did, and what came of it."""

    actor: str
    action: str
    target: str
    outcome: str
    at: datetime | None = None


class OperatorLog(ABC):
    """Every operator action, kept so that anyone can see who did what, and when."""

    @abstractmethod
    def record(self, action: OperatorAction) -> None:
        """Keep ``action``, at the time it is recorded."""

    @abstractmethod
    def recent(self, limit: int = 100, *, actor: str | None = None) -> list[OperatorAction]:
        """The latest actions (optionally of one actor), newest first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StuckDocument:
    """A document being worked on whose lease is gone or about to go.

    ``owner`` and ``seconds_left`` are ``None`` when no lease is held at all; a
    ``seconds_left`` at or below zero means the lease ran out.
    """

    document_id: int
    status: str
    owner: str | None
    seconds_left: float | None


class StuckWork(ABC):
    """Finds pending or processing documents without a live lease, or with one running out."""

    @abstractmethod
    def find(self, *, expiring_within: float, limit: int = 100) -> list[StuckDocument]:
        """Processing documents without a live lease, and leases ending within the window."""
