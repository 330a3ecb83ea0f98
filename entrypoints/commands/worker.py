"""``insighthub worker``: consume one kind of work (or all of it) until told to stop."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
from pathlib import Path

from adapters.bootstrap import NO_OVERRIDES, Overrides, bootstrap
from application.operations import WorkerPresence
from entrypoints.exposition import add_metrics_port_option, serve_metrics
from entrypoints.logs import configure_logging
from entrypoints.runtime import (
    WORKER_KINDS,
    Heartbeat,
    start_presence_thread,
    start_sweeper_thread,
    start_worker_threads,
)
from entrypoints.signals import stop_on_signals
from entrypoints.startup import wait_for_dependencies

log = logging.getLogger("insighthub.worker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="process work requests from the configured transport",
        description=(
            "Consume one kind of work request as a competing consumer: 'provisioning' "
            "(workspace.created), a pipeline stage ('ingestion': document.uploaded, "
            "'embeddings': document.chunked, 'graph': document.embedded), or 'all' of them "
            "in one process. SIGTERM stops taking work, finishes the job under way and exits 0."
        ),
    )
    parser.add_argument("kind", choices=(*WORKER_KINDS, "all"), help="which work to take")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="competing consumers per queue in this process (default 1)",
    )
    parser.add_argument(
        "--health-file",
        type=Path,
        metavar="PATH",
        help="touched every second while the worker loop runs; a supervisor checks its age",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to retry an unreachable database or broker before exiting (default 30)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help=(
            "after SIGTERM, how long the job under way may take; past it the worker exits "
            "anyway and the job is redelivered (default 30)"
        ),
    )
    add_metrics_port_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    if args.concurrency < 1:
        raise SystemExit("insighthub worker: --concurrency must be at least 1")
    services = bootstrap(overrides=overrides)
    settings = services.settings
    configure_logging(settings.log_format)
    kinds = list(WORKER_KINDS) if args.kind == "all" else [args.kind]
    stop = threading.Event()
    signalled = stop_on_signals(stop, what="finishing the job under way, taking no more work")
    heartbeat = Heartbeat(args.health_file)
    stop_metrics = serve_metrics(services.process_metrics(), args)
    try:
        problem = wait_for_dependencies(
            services, deadline=time.monotonic() + args.startup_timeout, stop=stop
        )
        if signalled.is_set():
            log.info("stopped before taking any work")
            return 0
        if problem is not None:
            log.error("cannot start: %s", problem)
            return 1
        presence = WorkerPresence(
            services.worker_registry,
            worker_id=services.worker_identity,
            stage=",".join(kinds),
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        threads = start_worker_threads(
            services, kinds, stop, concurrency=args.concurrency, on_worker=presence.track
        )
        reporter = start_presence_thread(
            presence, stop, every_seconds=settings.worker_heartbeat_seconds
        )
        sweeper = start_sweeper_thread(
            services, stop, every_seconds=max(0.5, settings.worker_lease_seconds / 4)
        )
        log.info(
            "worker started", extra={"worker": ",".join(kinds), "transport": settings.transport}
        )
        heartbeat.beat()
        # A consumer thread ends early only when it cannot go on; it then sets ``stop``.
        while not stop.wait(0.5):
            heartbeat.beat()
        deadline = time.monotonic() + args.stop_timeout
        for thread in [*threads, sweeper, reporter]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            # Not lost: its request was never acknowledged and goes back to the queue, and the
            # document's lease runs out for the sweeper of another worker to take it up.
            log.warning("the job under way did not finish within --stop-timeout; left to others")
            return 0 if signalled.is_set() else 1
        if not signalled.is_set():
            log.error("a consumer stopped on an error; exiting so that a supervisor restarts it")
            return 1
        log.info("worker stopped")
        return 0
    finally:
        heartbeat.clear()
        if stop_metrics is not None:
            stop_metrics()
        services.close()
