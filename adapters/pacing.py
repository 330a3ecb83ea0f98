"""Slowed-down hand-on of processing steps, so that a person can watch a demo happen."""

from __future__ import annotations

import time

from domain.events import DocumentStatusUpdated, Event
from domain.ports import MessagePublisher
from domain.status import DocumentProcessingStatus


class PacedPublisher(MessagePublisher):
    """Pauses after announcing each processing step, so that a person can watch it happen."""

    def __init__(self, inner: MessagePublisher, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def publish(self, event: Event) -> None:
        self._inner.publish(event)
        # Only workers announce "processing"; the API's own requests are never slowed.
        if (
            isinstance(event, DocumentStatusUpdated)
            and event.status is DocumentProcessingStatus.PROCESSING
        ):
            time.sleep(self._delay)

    def close(self) -> None:
        self._inner.close()


def paced(publisher: MessagePublisher, delay: float) -> MessagePublisher:
    """``publisher`` itself, or paced by ``delay`` seconds per processing step when positive."""
    return PacedPublisher(publisher, delay) if delay > 0 else publisher
