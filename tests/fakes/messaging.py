"""Fakes of domain.ports.messaging."""

from __future__ import annotations

from domain.errors import PublishFailed
from domain.events import Event
from domain.ports import Backlog, MessagePublisher, QueueBacklogs


class RecordingPublisher(MessagePublisher):
    """Keeps every published event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


class FlakyPublisher(MessagePublisher):
    """Refuses the first ``failures`` publishes, as a broker that is briefly away would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list[Event] = []
        self.attempts = 0

    def publish(self, event: Event) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise PublishFailed("broker unavailable")
        self.events.append(event)


class SettableBacklogs(QueueBacklogs):
    """Backlogs a test sets by hand; a queue in ``failing`` raises as an unreachable broker."""

    def __init__(self) -> None:
        self.backlogs: dict[str, Backlog] = {}
        self.failing: set[str] = set()

    def set(
        self, queue: str, waiting: int, oldest: float | None, unacknowledged: int | None = None
    ) -> None:
        self.backlogs[queue] = Backlog(
            queue=queue, waiting=waiting, oldest_age_seconds=oldest, unacknowledged=unacknowledged
        )

    def of(self, queue: str) -> Backlog:
        if queue in self.failing:
            raise ConnectionError(f"{queue}: broker unreachable")
        return self.backlogs.get(queue, Backlog(queue=queue, waiting=0, oldest_age_seconds=None))
