"""The outbox relay: publishes the events recorded with status changes, then marks them sent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from application.metrics import Metrics, NoMetrics
from domain.errors import MalformedMessage, PublishFailed
from domain.events import Event, decode
from domain.ports import MessagePublisher
from domain.ports.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves events from the outbox to the broker: at least once, in order per entity.

    A crash between publishing and marking sent publishes the batch again on the next turn;
    consumers drop what they have already applied (by event id or entity version).
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: MessagePublisher,
        *,
        batch_size: int = 200,
        idle_wait: float = 1.0,
        prune_after_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._prune_after = prune_after_seconds
        self._clock = clock
        self._last_prune = clock()
        self._metrics = metrics or NoMetrics()
        self.published = 0
        self.failures = 0

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, sleeping only while the outbox is empty."""
        while not stop.is_set():
            if self.relay_once() == 0:
                self._outbox.wait(self._idle_wait)
            if self._clock() - self._last_prune > self._prune_after / 10:
                self._last_prune = self._clock()
                self._outbox.prune(self._prune_after)

    def relay_once(self) -> int:
        """Publish one batch; how many events went out (0 when idle or the broker is away)."""
        started = time.perf_counter()
        try:
            sent = self._outbox.relay(self._publish, limit=self._batch_size)
        except PublishFailed as exc:
            self.failures += 1
            log.warning("relay could not publish; will retry: %s", exc)
            time.sleep(min(5.0, 0.1 * 2 ** min(self.failures, 6)))
            return 0
        self.failures = 0
        self.published += sent
        if sent:
            self._metrics.batch_relayed(sent, time.perf_counter() - started)
        return sent

    def _publish(self, entries: Sequence[OutboxEntry]) -> None:
        events: list[Event] = []
        for entry in entries:
            try:
                events.append(decode(entry.body))
            except MalformedMessage as exc:
                # Written by this system, so this is a bug; skipping it keeps the rest flowing.
                log.error("unpublishable outbox entry %s skipped: %s", entry.id, exc)
        self._publisher.publish_many(events)
