"""Run an ``insighthub`` command (serve, relay, worker) inside a benchmark's namespace.

The command runs exactly as the CLI runs it; the one difference is that with
``BENCH_NAMESPACE`` set, the NATS and Redis brokers use that namespace instead of the shared
default, as RabbitMQ already does through ``RABBITMQ_EXCHANGE``. Usage:
``python -m bench.launch serve --port 8123``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dependency_injector import providers

from adapters import container as composition
from adapters.container import Container
from adapters.settings import Settings
from domain.ports import MessageBroker


def namespaced(container: Container, settings: Settings, namespace: str) -> None:
    """Point the container's NATS or Redis broker at ``namespace``."""
    opened = container.opened()

    def nats() -> MessageBroker:
        from adapters.nats.broker import NatsBroker

        broker = NatsBroker(
            url=settings.nats_url,
            max_deliveries=settings.max_deliveries,
            ack_wait=settings.redelivery_seconds,
            namespace=namespace,
        )
        opened["broker"] = broker
        return broker

    def redis() -> MessageBroker:
        from adapters.redis.broker import RedisBroker

        broker = RedisBroker(
            url=settings.redis_url,
            max_deliveries=settings.max_deliveries,
            claim_idle_seconds=settings.redelivery_seconds,
            namespace=namespace,
        )
        opened["broker"] = broker
        return broker

    if settings.transport == "nats":
        container.broker.override(providers.Singleton(nats))
    elif settings.transport == "redis":
        container.broker.override(providers.Singleton(redis))


def build_container(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> tuple[Container, Settings]:
    """``adapters.container.build_container``, then the benchmark's namespace applied."""
    container, settings = composition.build_container(environ, **overrides)
    namespace = os.environ.get("BENCH_NAMESPACE")
    if namespace:
        namespaced(container, settings, namespace)
    return container, settings


def main(argv: list[str]) -> int:
    from entrypoints import cli
    from entrypoints.commands import relay, serve, worker

    for command in (relay, serve, worker):
        command.build_container = build_container  # type: ignore[attr-defined]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
