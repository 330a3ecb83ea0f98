"""``insighthub relay``: publish the outbox (DELIVERY=outbox) until told to stop."""

from __future__ import annotations

import argparse
import logging
import threading
import time

from adapters.bootstrap import NO_OVERRIDES, Overrides, bootstrap
from entrypoints.exposition import add_metrics_port_option, serve_metrics
from entrypoints.logs import configure_logging
from entrypoints.signals import stop_on_signals
from entrypoints.startup import wait_for_dependencies

log = logging.getLogger("insighthub.relay")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="publish the status events recorded in the outbox (DELIVERY=outbox)",
        description=(
            "Publish, with broker confirms, the events that status changes recorded in the "
            "outbox table, then mark them sent. Several relays may run at once on PostgreSQL. "
            "SIGTERM finishes the batch under way and exits 0."
        ),
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to retry an unreachable database or broker before exiting (default 30)",
    )
    add_metrics_port_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    services = bootstrap(overrides=overrides)
    settings = services.settings
    configure_logging(settings.log_format)
    if settings.delivery != "outbox":
        log.error(
            "DELIVERY is %r: there is no outbox to relay (set DELIVERY=outbox)", settings.delivery
        )
        return 2
    stop = threading.Event()
    stop_on_signals(stop, what="finishing the batch under way")
    metrics = services.process_metrics()
    # Read at scrape time: building the relay connects, which waits for the dependencies below.
    metrics.read_gauge(
        "outbox_relay_failing_batches",
        "Consecutive batches the relay could not publish (0 while the broker takes them).",
        lambda: services.relay.failures,
    )
    stop_metrics = serve_metrics(metrics, args)
    try:
        problem = wait_for_dependencies(
            services, deadline=time.monotonic() + args.startup_timeout, stop=stop
        )
        if problem is not None:
            log.error("cannot start: %s", problem)
            return 1
        log.info("relay started", extra={"transport": settings.transport})
        services.relay.run(stop)
        log.info("relay stopped")
        return 0
    finally:
        if stop_metrics is not None:
            stop_metrics()
        services.close()
