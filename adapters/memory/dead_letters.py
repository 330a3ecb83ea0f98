"""Dead letters in process: what each queue set aside, kept in a list for an operator."""

from __future__ import annotations

import logging
import threading
import uuid

from adapters.memory.connection import InMemoryConnection, Message
from domain.events import utc_now
from domain.ports import DeadLetter, DeadLetters

log = logging.getLogger(__name__)


class InMemoryDeadLetters(DeadLetters):
    """Dead letters of every queue of one broker, oldest first."""

    def __init__(self, connection: InMemoryConnection) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._letters: dict[str, list[DeadLetter]] = {}

    def of(self, queue: str) -> list[DeadLetter]:
        with self._lock:
            return list(self._letters.get(queue, ()))

    def requeue(self, queue: str, letter_id: str) -> bool:
        letter = self._take(queue, letter_id)
        if letter is not None:
            self._connection.route(letter.routing_key, letter.body)
        return letter is not None

    def discard(self, queue: str, letter_id: str) -> bool:
        return self._take(queue, letter_id) is not None

    def _take(self, queue: str, letter_id: str) -> DeadLetter | None:
        with self._lock:
            letters = self._letters.get(queue, [])
            for letter in letters:
                if letter.letter_id == letter_id:
                    letters.remove(letter)
                    return letter
        return None

    def set_aside(self, queue: str, message: Message, reason: str) -> None:
        now = utc_now()
        letter = DeadLetter(
            letter_id=uuid.uuid4().hex,
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
