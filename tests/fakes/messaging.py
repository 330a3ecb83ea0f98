"""Fakes of domain.ports.messaging."""

from __future__ import annotations

from domain.errors import PublishFailed
from domain.events import Event
from domain.ports import MessagePublisher


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
