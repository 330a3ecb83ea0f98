"""Messaging: publishing events, consuming work, and listening to status broadcasts.

Two delivery semantics, both implemented by every transport:

* a **work queue** hands each work request to one of several competing consumers, which
  acknowledges it once the outcome is recorded; unacknowledged work is delivered again, and
  work that keeps failing is dead-lettered after a bounded number of deliveries;
* a **status broadcast** hands every status event to every subscribed instance.

Dead-lettered work is kept by the transport where an operator can list it (``DeadLetters``),
and how much work waits in each queue can be read without consuming any (``QueueBacklogs``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.errors import MalformedMessage
from domain.events import Event, StatusEvent, decode

StatusListener = Callable[[StatusEvent], None]


class MessagePublisher(ABC):
    """Publishes events, returning only once the broker has taken responsibility for them."""

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Publish ``event``; raises ``PublishFailed`` when the broker did not confirm it."""

    def publish_many(self, events: Sequence[Event]) -> None:
        """Publish ``events`` in order; ``PublishFailed`` unless every one was confirmed.

        Transports that can pipeline confirmations override this to wait once per batch.
        """
        for event in events:
            self.publish(event)

    def close(self) -> None:
        """Release the connection, if any."""


class Delivery(ABC):
    """One received work request; settle it exactly once."""

    def __init__(self, event: Event, attempt: int) -> None:
        self.event = event
        self.attempt = attempt

    @abstractmethod
    def ack(self) -> None:
        """The work is done and recorded: never deliver it again."""

    @abstractmethod
    def retry(self, reason: str) -> None:
        """The work failed: deliver it again, or dead-letter it once attempts run out."""

    @abstractmethod
    def dead_letter(self, reason: str) -> None:
        """The work can never succeed: set it aside for an operator."""


class WorkQueue(ABC):
    """Receives the work requests of one named queue, competing with other consumers of it."""

    @abstractmethod
    def receive(self, timeout: float) -> Delivery | None:
        """The next delivery, or ``None`` after ``timeout`` seconds without one."""

    @abstractmethod
    def close(self) -> None:
        """Stop consuming; unsettled deliveries go back to the queue."""


class Subscription(ABC):
    """A live status-broadcast subscription."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """Whether events are flowing (connected and subscribed) right now."""

    @abstractmethod
    def close(self) -> None:
        """Stop listening."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Work a queue set aside, its body exactly as received, and why.

    ``letter_id`` is the transport's name for it (stable between readings) for ``requeue`` and
    ``discard``; ``attempts`` and the failure times are ``None`` where the transport does not
    record them.
    """

    letter_id: str
    queue: str
    routing_key: str
    body: bytes
    reason: str
    attempts: int | None = None
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None

    @property
    def event(self) -> Event | None:
        """The work request the body holds, or ``None`` when the body is malformed."""
        try:
            return decode(self.body)
        except MalformedMessage:
            return None


class DeadLetters(ABC):
    """The work each queue set aside, for an operator to look at, requeue or discard."""

    @abstractmethod
    def of(self, queue: str) -> list[DeadLetter]:
        """What was dead-lettered from work queue ``queue``, oldest first; nothing is consumed."""

    @abstractmethod
    def requeue(self, queue: str, letter_id: str) -> bool:
        """Publish the letter's body again to its routing key, then remove it; whether it was
        there. The work is delivered afresh, with its attempts counted from one."""

    @abstractmethod
    def discard(self, queue: str, letter_id: str) -> bool:
        """Remove the letter for good; whether it was there."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """What waits in one work queue right now.

    ``waiting`` counts the requests not yet handed to any consumer; ``oldest_age_seconds`` is
    how long the oldest of them has waited since it was published, ``None`` when nothing waits
    or the transport cannot tell without consuming it. ``unacknowledged`` counts requests handed
    to a consumer and not yet settled, ``None`` where the transport does not tell.
    """

    queue: str
    waiting: int
    oldest_age_seconds: float | None
    unacknowledged: int | None = None


class QueueBacklogs(ABC):
    """Reads how many requests wait in a work queue and how old the oldest is."""

    @abstractmethod
    def of(self, queue: str) -> Backlog:
        """The backlog of work queue ``queue``; nothing is consumed or redelivered."""


class MessageBroker(ABC):
    """Opens publishers, work queues and status subscriptions on one transport."""

    @abstractmethod
    def publisher(self) -> MessagePublisher:
        """A publisher for any event: work requests and status events alike."""

    @abstractmethod
    def work_queue(self, name: str, routing_keys: Sequence[str]) -> WorkQueue:
        """Consume the named durable queue, bound to ``routing_keys``."""

    @abstractmethod
    def subscribe_status(
        self, on_event: StatusListener, on_resync: Callable[[], None] | None = None
    ) -> Subscription:
        """Call ``on_event`` (on a broker thread) for every status event published from now on.

        ``on_resync`` is called after the subscription recovers from a gap in which events
        may have been missed, so that the listener can reload the truth.
        """

    @abstractmethod
    def dead_letters(self) -> DeadLetters:
        """The dead-lettered work of this transport's queues."""

    @abstractmethod
    def backlogs(self) -> QueueBacklogs:
        """How much work waits in this transport's queues."""

    def close(self) -> None:
        """Release every connection this broker opened."""
