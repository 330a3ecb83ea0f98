"""Running workers inside a process: threads that share one container."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from adapters.container import Container
from application.worker import Worker, WorkHandler
from domain.events import WORK_QUEUES
from domain.ports import WorkQueue


def handlers_for(container: Container, queue: str) -> dict[str, WorkHandler]:
    """The handler of every routing key bound to ``queue``."""
    table: dict[str, dict[str, WorkHandler]] = {
        "ingestion": {"document.uploaded": container.process_document()},
        "provisioning": {"workspace.created": container.provision_workspace()},
    }
    if queue not in table:
        raise ValueError(f"unknown worker {queue!r}; choose from {', '.join(sorted(table))}")
    return table[queue]


def _work(worker: Worker, queue: WorkQueue, stop: threading.Event) -> None:
    try:
        worker.run(stop)
    finally:
        queue.close()


def start_worker_threads(
    container: Container, queues: Sequence[str], stop: threading.Event, *, poll_seconds: float = 0.2
) -> list[threading.Thread]:
    """One thread per queue, each with its own consumer, running until ``stop`` is set."""
    threads = []
    for name in queues:
        queue = container.broker().work_queue(name, WORK_QUEUES[name])
        worker = Worker(queue, handlers_for(container, name), poll_seconds=poll_seconds)
        thread = threading.Thread(
            target=_work, args=(worker, queue, stop), name=f"worker-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads
