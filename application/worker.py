"""The worker loop: take work from a queue, handle it, settle the delivery."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from application.metrics import ACKED, DEAD_LETTERED, RETRIED, Metrics, NoMetrics
from domain.events import Event
from domain.ports import WorkQueue

log = logging.getLogger(__name__)

WorkHandler = Callable[[Event], None]


def exponential_backoff(attempt: int) -> float:
    """1, 2, 4, 8, then 15 seconds: five attempts span about half a minute of outage."""
    return float(min(15, 2 ** (attempt - 1)))


class Worker:
    """Handles deliveries one at a time and acknowledges each only after its handler returns.

    A handler that raises has its delivery retried (the transport dead-letters it after a
    bounded number of attempts); the worker carries on with the next one. Before handing a
    failed delivery back it waits, longer at each attempt: a transport that redelivers at
    once would otherwise spend every attempt within a second of, say, a database restart.
    """

    def __init__(
        self,
        queue: WorkQueue,
        handlers: dict[str, WorkHandler],
        *,
        poll_seconds: float = 0.5,
        on_beat: Callable[[], None] | None = None,
        retry_backoff: Callable[[int], float] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._queue = queue
        self._handlers = handlers
        self._poll_seconds = poll_seconds
        self._on_beat = on_beat
        self._retry_backoff = retry_backoff or exponential_backoff
        self._stop = threading.Event()
        self._metrics = metrics or NoMetrics()
        self.handled = 0
        self.failed = 0
        # The request being handled right now, for the worker's heartbeat.
        self.current_event: Event | None = None

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the job under way is finished first."""
        self._stop = stop
        while not stop.is_set():
            if self._on_beat is not None:
                self._on_beat()
            self.run_once(self._poll_seconds)

    def run_once(self, timeout: float) -> bool:
        """Handle at most one delivery; whether there was one."""
        delivery = self._queue.receive(timeout)
        if delivery is None:
            return False
        event = delivery.event
        context = {"event_id": event.event_id, "routing_key": event.routing_key}
        started = time.perf_counter()

        def settled(outcome: str) -> None:
            self._metrics.delivery_settled(
                event.routing_key,
                time.perf_counter() - started,
                outcome=outcome,
                attempt=delivery.attempt,
            )

        handler = self._handlers.get(event.routing_key)
        if handler is None:
            delivery.dead_letter(f"no handler for {event.routing_key}")
            log.error("no handler; dead-lettered", extra=context)
            settled(DEAD_LETTERED)
            return True
        self.current_event = event
        try:
            handler(event)
        except Exception as exc:  # the loop must survive any one job
            self.current_event = None
            self.failed += 1
            settled(RETRIED)
            delay = self._retry_backoff(delivery.attempt)
            log.exception("handler failed; retrying in %.1fs", delay, extra=context)
            self._stop.wait(delay)
            delivery.retry(f"{type(exc).__name__}: {exc}")
            return True
        self.current_event = None
        delivery.ack()
        settled(ACKED)
        self.handled += 1
        return True
