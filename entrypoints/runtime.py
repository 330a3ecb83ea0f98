"""Running workers inside a process: threads that share one ``Services``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from adapters.bootstrap import WORKER_KINDS, Services
from application.operations import WorkerPresence
from application.worker import Worker
from domain.events import WORK_QUEUES
from domain.ports import WorkQueue

log = logging.getLogger(__name__)

__all__ = [
    "WORKER_KINDS",
    "Heartbeat",
    "start_presence_thread",
    "start_relay_thread",
    "start_sweeper_thread",
    "start_worker_threads",
]


def _work(worker: Worker, queue: WorkQueue, stop: threading.Event) -> None:
    try:
        worker.run(stop)
    except Exception:  # a consumer that cannot go on must not take the process down silently
        log.exception("worker thread stopped")
        stop.set()
    finally:
        queue.close()


def start_worker_threads(
    services: Services,
    queues: Sequence[str],
    stop: threading.Event,
    *,
    poll_seconds: float = 0.2,
    concurrency: int = 1,
    on_beat: Callable[[], None] | None = None,
    on_worker: Callable[[Worker], None] | None = None,
) -> list[threading.Thread]:
    """``concurrency`` threads per queue, each a competing consumer, running until ``stop``."""
    threads = []
    for name in queues:
        for n in range(concurrency):
            queue = services.broker.work_queue(name, WORK_QUEUES[name])
            worker = Worker(
                queue,
                services.handlers_for(name),
                poll_seconds=poll_seconds,
                on_beat=on_beat,
                metrics=services.metrics,
            )
            if on_worker is not None:
                on_worker(worker)
            thread = threading.Thread(
                target=_work, args=(worker, queue, stop), name=f"worker-{name}-{n}", daemon=True
            )
            thread.start()
            threads.append(thread)
    return threads


def start_sweeper_thread(
    services: Services, stop: threading.Event, *, every_seconds: float
) -> threading.Thread:
    """Periodically take up documents whose worker vanished (see ``LeaseSweeper``)."""
    sweeper = services.lease_sweeper

    def sweep() -> None:
        while not stop.wait(every_seconds):
            try:
                sweeper.sweep()
            except Exception:  # a failed sweep is retried on the next tick
                log.exception("lease sweep failed")

    thread = threading.Thread(target=sweep, name="lease-sweeper", daemon=True)
    thread.start()
    return thread


def start_presence_thread(
    presence: WorkerPresence, stop: threading.Event, *, every_seconds: float
) -> threading.Thread:
    """Report the process's workers to the registry every ``every_seconds`` until ``stop``;
    a clean stop removes the report, a killed process's report simply ages out."""

    def report() -> None:
        while True:
            try:
                presence.beat()
            except Exception:  # an unreachable store must not stop the work; next beat retries
                log.warning("could not record the worker heartbeat", exc_info=True)
            if stop.wait(every_seconds):
                break
        try:
            presence.leave()
        except Exception:
            log.warning("could not remove the worker heartbeat", exc_info=True)

    thread = threading.Thread(target=report, name="worker-presence", daemon=True)
    thread.start()
    return thread


class Heartbeat:
    """Touches a file at most once a second while the process is healthy: a liveness signal.

    A supervisor compares the file's age with a limit of its own; the file is removed when
    the process stops, so that a stale one never looks like a live worker.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last = 0.0
        self._lock = threading.Lock()

    def beat(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last < 1.0:
                return
            self._last = now
        try:
            self._path.touch()
        except OSError:  # an unwritable health file must not stop the work
            log.warning("cannot touch the health file %s", self._path)

    def clear(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def start_relay_thread(services: Services, stop: threading.Event) -> threading.Thread:
    """Relay the outbox (``DELIVERY=outbox``) inside this process until ``stop`` is set.

    For single-process setups (the demo, ``serve`` with the in-memory transport), where no
    ``insighthub relay`` process can reach the broker or the in-memory outbox.
    """
    relay = services.relay

    def run() -> None:
        while not stop.is_set():
            try:
                relay.run(stop)
            except Exception:  # e.g. a database error the outbox did not absorb: start again
                log.exception("outbox relay failed; restarting it")
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="outbox-relay", daemon=True)
    thread.start()
    return thread
