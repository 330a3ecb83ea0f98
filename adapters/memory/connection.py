"""The in-process fabric every room of the memory transport talks to, as others talk to a server.

There is no IO to manage, so this "connection" is what a connection reaches elsewhere: the
queues, their bindings and the status subscribers, under one lock. One object, shared by every
publisher, work queue and subscription of a broker, as a process shares one server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.events import is_status_routing_key


@dataclass
class Message:
    """A body waiting in a queue, with the delivery it will be, its first failure, and when it
    was published (``time.monotonic``; kept across redeliveries)."""

    routing_key: str
    body: bytes
    attempt: int = 1
    first_failed_at: datetime | None = field(default=None, compare=False)
    published_at: float = field(default_factory=time.monotonic, compare=False)


class StatusInbox(Protocol):
    def offer(self, body: bytes) -> None: ...


class InMemoryConnection:
    """Queues, bindings and status subscribers that live as long as this object."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._bindings: dict[str, set[str]] = {}
        self._queues: dict[str, deque[Message]] = {}
        self._subscribers: list[StatusInbox] = []

    def declare(self, queue: str, routing_keys: tuple[str, ...]) -> None:
        with self.lock:
            self._queues.setdefault(queue, deque())
            for key in routing_keys:
                self._bindings.setdefault(key, set()).add(queue)

    def route(self, routing_key: str, body: bytes) -> None:
        """Hand ``body`` to every queue bound to ``routing_key``, or, for a status key, to
        every subscriber: a body as it is, valid or not."""
        if is_status_routing_key(routing_key):
            self.broadcast(body)
            return
        with self.lock:
            for name in self._bindings.get(routing_key, ()):
                self._queues[name].append(Message(routing_key, body))
            self.lock.notify_all()

    def broadcast(self, body: bytes) -> None:
        with self.lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(body)

    def take(self, queue: str, timeout: float) -> Message | None:
        with self.lock:
            if not self.lock.wait_for(lambda: bool(self._queues[queue]), timeout):
                return None
            return self._queues[queue].popleft()

    def head(self, queue: str) -> tuple[int, Message | None]:
        """How many messages wait in ``queue``, and the first of them; nothing is taken."""
        with self.lock:
            waiting = self._queues.get(queue) or deque()
            return len(waiting), (waiting[0] if waiting else None)

    def put_back(self, queue: str, message: Message) -> None:
        """Queue ``message`` again at the front, as its next delivery."""
        with self.lock:
            self._queues[queue].appendleft(message)
            self.lock.notify_all()

    def subscribe(self, subscriber: StatusInbox) -> None:
        with self.lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: StatusInbox) -> None:
        with self.lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def subscribers(self) -> list[StatusInbox]:
        with self.lock:
            return list(self._subscribers)
