"""A work queue in process: competing consumers of one queue, with bounded redelivery."""

from __future__ import annotations

from dataclasses import replace

from adapters.memory.connection import InMemoryConnection, Message
from adapters.memory.dead_letters import InMemoryDeadLetters
from adapters.messaging import PLAIN, EventCodec, exhausted
from domain.errors import MalformedMessage
from domain.events import Event, utc_now
from domain.ports import Delivery, WorkQueue


class InMemoryDelivery(Delivery):
    def __init__(self, queue: InMemoryWorkQueue, message: Message, event: Event) -> None:
        super().__init__(event, message.attempt)
        self._queue = queue
        self._message = message

    def ack(self) -> None:
        self._queue._settle(self._message)

    def retry(self, reason: str) -> None:
        if self._queue._settle(self._message):
            self._queue._retry(self._message, reason)

    def dead_letter(self, reason: str) -> None:
        if self._queue._settle(self._message):
            self._queue._dead_letters.set_aside(self._queue.name, self._message, reason)


class InMemoryWorkQueue(WorkQueue):
    """Takes messages of the queue ``name``; malformed ones are dead-lettered on the way."""

    def __init__(
        self,
        connection: InMemoryConnection,
        dead_letters: InMemoryDeadLetters,
        name: str,
        *,
        max_deliveries: int,
        codec: EventCodec = PLAIN,
    ) -> None:
        self.name = name
        self.max_deliveries = max_deliveries
        self._codec = codec
        self._connection = connection
        self._dead_letters = dead_letters
        self._unsettled: list[Message] = []
        self._closed = False

    def receive(self, timeout: float) -> Delivery | None:
        if self._closed:
            raise RuntimeError("work queue is closed")
        message = self._connection.take(self.name, timeout)
        while message is not None:
            try:
                event = self._codec.decode(message.body)
            except MalformedMessage as exc:
                self._dead_letters.set_aside(self.name, message, str(exc))
                message = self._connection.take(self.name, 0)
                continue
            self._unsettled.append(message)
            return InMemoryDelivery(self, message, event)
        return None

    def close(self) -> None:
        """Unsettled deliveries go back to the queue, as a dropped connection would."""
        self._closed = True
        for message in reversed(self._unsettled):
            self._retry(message, "consumer closed before settling")
        self._unsettled.clear()

    def _retry(self, message: Message, reason: str) -> None:
        if message.attempt >= self.max_deliveries:
            self._dead_letters.set_aside(self.name, message, exhausted(reason, message.attempt))
            return
        again = replace(
            message,
            attempt=message.attempt + 1,
            first_failed_at=message.first_failed_at or utc_now(),
        )
        self._connection.put_back(self.name, again)

    def _settle(self, message: Message) -> bool:
        if message in self._unsettled:
            self._unsettled.remove(message)
            return True
        return False
