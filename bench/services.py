"""The servers a benchmark talks to, and a private corner of each so that runs never collide.

Every run works in its own namespace: a PostgreSQL schema, a RabbitMQ exchange (and the
queues named after it), NATS streams and subjects, and Redis keys, all named after it and
removed afterwards, so that other runs and test suites on the same servers are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import make_url

from adapters.settings import ENVIRONMENT_VARIABLES
from adapters.sql.database import migrate
from bench.results import Row, first_line, unavailable
from domain.events import WORK_QUEUES

if TYPE_CHECKING:
    from bench.suite import Context

TRANSPORTS = ("rabbitmq", "nats", "redis")


@dataclass(frozen=True)
class Endpoints:
    """Where the servers are (overridable through ``BENCH_*`` variables)."""

    postgres: str
    rabbitmq: str
    nats: str
    redis: str

    @classmethod
    def from_environ(cls) -> Endpoints:
        return cls(
            postgres=os.environ.get(
                "BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
            ),
            rabbitmq=os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            nats=os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222"),
            redis=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        )


def new_namespace() -> str:
    """A name valid as a schema, an exchange, a NATS namespace and a Redis key prefix."""
    return f"bench_{uuid.uuid4().hex[:10]}"


def libpq_url(sqlalchemy_url: str) -> str:
    """The same database as a plain libpq URI, for raw psycopg."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Workspace:
    """One benchmark case's private database schema and message namespace."""

    namespace: str
    database_url: str
    endpoints: Endpoints
    secret_key: str

    def environ(
        self, transport: str, *, delivery: str = "direct", storage_dir: str = ""
    ) -> dict[str, str]:
        """The configuration an ``insighthub`` process of this workspace runs with."""
        keep = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
        keep.update(
            {
                "DATABASE_URL": self.database_url,
                "TRANSPORT": transport,
                "DELIVERY": delivery,
                "RABBITMQ_URL": self.endpoints.rabbitmq,
                "RABBITMQ_EXCHANGE": self.namespace,
                "NATS_URL": self.endpoints.nats,
                "REDIS_URL": self.endpoints.redis,
                "SECRET_KEY": self.secret_key,
                "BROKER_NAMESPACE": self.namespace,
                "LOG_FORMAT": "text",
                "REDELIVERY_SECONDS": "30",
                # A benchmark's corpus arrives faster than a person uploads: it measures the
                # pipeline, not the per-user upload limit.
                "UPLOADS_PER_MINUTE": BENCH_UPLOADS_PER_MINUTE,
            }
        )
        if storage_dir:
            keep["STORAGE_DIR"] = storage_dir
        return keep


BENCH_UPLOADS_PER_MINUTE = "1000000"

# A developer's shell may set these; a benchmark process must see only its own values.
CONFIG_VARIABLES = ENVIRONMENT_VARIABLES


@contextlib.contextmanager
def private_workspace(endpoints: Endpoints) -> Iterator[Workspace]:
    """A migrated private schema and a fresh namespace; everything is removed on exit."""
    namespace = new_namespace()
    admin = libpq_url(endpoints.postgres)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{namespace}"')
    url = (
        make_url(endpoints.postgres)
        .update_query_dict({"options": f"-csearch_path={namespace}"})
        .render_as_string(hide_password=False)
    )
    try:
        migrate(url)
        yield Workspace(namespace, url, endpoints, secrets.token_urlsafe(32))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
        remove_transport_namespace(endpoints, namespace)


def remove_transport_namespace(endpoints: Endpoints, namespace: str) -> None:
    """Delete what the transports created under ``namespace``; a server that is down is skipped."""
    with contextlib.suppress(Exception):
        _remove_rabbitmq(endpoints.rabbitmq, namespace)
    with contextlib.suppress(Exception):
        _remove_nats(endpoints.nats, namespace)
    with contextlib.suppress(Exception):
        _remove_redis(endpoints.redis, namespace)


def _remove_rabbitmq(url: str, namespace: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in [*WORK_QUEUES, "sink"]:
            channel.queue_delete(f"{namespace}.{queue}")
            channel.queue_delete(f"{namespace}.{queue}.dead")
        channel.exchange_delete(namespace)
        channel.exchange_delete(f"{namespace}.dlx")
    finally:
        connection.close()


def _remove_nats(url: str, namespace: str) -> None:
    import asyncio

    import nats

    from adapters.nats.topology import NatsTopology

    async def remove() -> None:
        client = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0)
        try:
            jetstream = client.jetstream()
            topology = NatsTopology(namespace)
            for stream in (topology.work_stream, topology.dead_stream):
                with contextlib.suppress(Exception):
                    await jetstream.delete_stream(stream)
        finally:
            await client.close()

    asyncio.run(remove())


def _remove_redis(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def rabbitmq_sink(url: str, namespace: str) -> None:
    """Bind a bounded queue to the status events, as a server instance's queue would be."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.exchange_declare(namespace, exchange_type="topic", durable=True)
        channel.queue_declare(
            f"{namespace}.sink",
            arguments={"x-max-length": 1000, "x-overflow": "drop-head"},
        )
        channel.queue_bind(f"{namespace}.sink", namespace, routing_key="*.status.updated")
    finally:
        connection.close()


def per_transport(
    context: Context,
    transports: Sequence[str],
    benchmark: str,
    started: Callable[[str], str],
    run: Callable[[Context, Workspace, str], list[Row]],
) -> list[Row]:
    """``run`` on each transport in a private workspace of its own; a failed transport is an
    "unavailable" row of ``benchmark``, and the others still run."""
    rows: list[Row] = []
    for transport in transports:
        context.log(started(transport))
        try:
            with private_workspace(context.endpoints) as workspace:
                rows += run(context, workspace, transport)
        except Exception as exc:
            context.log(f"  {transport} failed: {first_line(exc)}")
            rows.append(unavailable(benchmark, transport, "updates/s", first_line(exc)))
    return rows
