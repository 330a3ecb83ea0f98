"""Dead letters in process: what each queue set aside, kept in a list for an operator."""

from __future__ import annotations

import logging
import threading

from adapters.memory.connection import Message
from domain.events import utc_now
from domain.ports import DeadLetter, DeadLetters

log = logging.getLogger(__name__)


class InMemoryDeadLetters(DeadLetters):
    """Dead letters of every queue of one broker, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._letters: dict[str, list[DeadLetter]] = {}

    def of(self, queue: str) -> list[DeadLetter]:
        with self._lock:
            return list(self._letters.get(queue, ()))

    def set_aside(self, queue: str, message: Message, reason: str) -> None:
        now = utc_now()
        letter = DeadLetter(
            queue=queue,
            routing_key=message.routing_key,
            body=message.body,
            reason=reason,
            attempts=message.attempt,
            first_failed_at=message.first_failed_at or now,
            last_failed_at=now,
        )
        with self._lock:
            self._letters.setdefault(queue, []).append(letter)
        log.warning("dead-lettered", extra={"queue": queue, "reason": reason})
