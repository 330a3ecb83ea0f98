"""Two ``insighthub serve`` processes sharing PostgreSQL and a real broker.

Workers run in a process of their own (``insighthub worker all``); each client, on whichever
instance it is connected to, must get exactly its own user's events.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pika
import psycopg
import pytest
from websockets.sync.client import ClientConnection

from tests.e2e.conftest import (
    GOOD_TEXT,
    ServerProcess,
    clean_environ,
    ready_workspace,
    upload,
    wait_for,
)
from tests.e2e.test_websocket import Frame, drain, frames_until, is_document, open_socket, receive
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POSTGRES_ADMIN = "postgresql://root@127.0.0.1:5432/test"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
TRANSPORTS = [
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    pytest.param("nats", marks=pytest.mark.nats),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://root@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def exchange() -> Iterator[str]:
    """A RabbitMQ exchange name of this test's own; its exchanges and queues are deleted after."""
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        try:
            channel = connection.channel()
            for kind in ("provisioning", "ingestion", "embeddings", "graph"):
                channel.queue_delete(f"{name}.{kind}")
                channel.queue_delete(f"{name}.{kind}.dead")
            channel.exchange_delete(name)
            channel.exchange_delete(f"{name}.dlx")
        finally:
            connection.close()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *args]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_client_gets_exactly_its_users_events_on_either_instance(
    transport: str,
    database_url: str,
    exchange: str,
    tmp_path: Path,
    make_server: Callable[..., ServerProcess],
    new_user: Callable[[], int],
) -> None:
    environ = {
        "DATABASE_URL": database_url,
        "TRANSPORT": transport,
        "RABBITMQ_EXCHANGE": exchange,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "STORAGE_DIR": str(tmp_path / "files"),
    }
    subprocess.run(_cli("migrate"), env=clean_environ(environ), check=True, timeout=120)
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        _cli("worker", "all"), env=clean_environ(environ), stdout=worker_log, stderr=worker_log
    )
    try:
        first = make_server(environ=environ)
        second = make_server(environ=environ)
        alice, bob = new_user(), new_user()
        sockets: dict[tuple[str, int], ClientConnection] = {}
        with contextlib.ExitStack() as stack:
            for label, server in (("first", first), ("second", second)):
                for user in (alice, bob):
                    ws = stack.enter_context(open_socket(server, user))
                    assert receive(ws)["type"] == "snapshot"
                    sockets[(label, user)] = ws
            # Alice works through the first instance, Bob through the second.
            with first.client(alice) as alice_api, second.client(bob) as bob_api:
                alice_space = ready_workspace(alice_api, "Alice's")
                bob_space = ready_workspace(bob_api, "Bob's")
                alice_doc = upload(alice_api, alice_space["id"], "a.md", GOOD_TEXT).json()
                bob_doc = upload(bob_api, bob_space["id"], "b.md", GOOD_TEXT).json()

            done = {alice: alice_doc["id"], bob: bob_doc["id"]}
            for (label, user), ws in sockets.items():
                document_id = done[user]

                def finished(frame: Frame, document_id: int = document_id) -> bool:
                    return is_document(frame, document_id, "ready")

                frames = frames_until(ws, finished, timeout=60)
                frames += drain(ws)
                assert {f["data"]["user_id"] for f in frames} == {user}, label
                versions = [
                    f["data"]["version"]
                    for f in frames
                    if f["type"] == "document_status" and f["data"]["document_id"] == document_id
                ]
                assert versions == sorted(set(versions)), label
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()


@pytest.mark.rabbitmq
def test_a_broker_outage_makes_the_server_unready_then_resyncs_every_socket(
    exchange: str, make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    with TcpProxy("127.0.0.1", 5672) as proxy:
        server = make_server(
            environ={
                "TRANSPORT": "rabbitmq",
                "RABBITMQ_URL": proxy.url_for("amqp://guest:guest@127.0.0.1:{port}/%2F"),
                "RABBITMQ_EXCHANGE": exchange,
            }
        )
        with open_socket(server, new_user()) as ws:
            assert receive(ws)["type"] == "snapshot"
            proxy.cut()
            wait_for(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 503)
            assert httpx.get(f"{server.base_url}/readyz").json()["subscription"] == "down"
            proxy.restore()
            wait_for(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 200, timeout=60)
            assert receive(ws, timeout=30)["type"] == "snapshot"
        assert server.metric("status_resyncs_total") >= 1
