"""Metrics exposition: the server on ``/metrics``, a worker or the relay on ``--metrics-port``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class ServableMetrics(Protocol):
    def serve(self, port: int, host: str) -> Callable[[], None]: ...


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


def serve_metrics(metrics: ServableMetrics, args: argparse.Namespace) -> Callable[[], None] | None:
    """Start the metrics endpoint if ``--metrics-port`` asks for one; returns how to stop it."""
    if args.metrics_port is None:
        return None
    stop = metrics.serve(args.metrics_port, args.metrics_host)
    log.info("metrics served", extra={"port": args.metrics_port})
    return stop
