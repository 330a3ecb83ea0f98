"""Metrics exposition: the server on ``/metrics``, a worker or the relay on ``--metrics-port``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from adapters.container import Container
from adapters.prometheus.metrics import PrometheusMetrics

log = logging.getLogger(__name__)


def process_metrics(container: Container) -> PrometheusMetrics:
    """The process's registry, with the counts the status service keeps itself."""
    metrics = container.metrics()
    if not isinstance(metrics, PrometheusMetrics):
        raise TypeError(f"metrics are not exposed by {type(metrics).__name__}")
    metrics.read_counter(
        "status_events_lost_total",
        "Status events this process failed to publish after every attempt.",
        lambda: container.status_service().lost_events,
    )
    return metrics


def add_metrics_port_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: not served)",
    )
    parser.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        metavar="HOST",
        help="address the metrics port listens on (default %(default)s)",
    )


def serve_metrics(
    metrics: PrometheusMetrics, args: argparse.Namespace
) -> Callable[[], None] | None:
    """Start the metrics endpoint if ``--metrics-port`` asks for one; returns how to stop it."""
    if args.metrics_port is None:
        return None
    stop = metrics.serve(args.metrics_port, args.metrics_host)
    log.info("metrics served", extra={"port": args.metrics_port})
    return stop
