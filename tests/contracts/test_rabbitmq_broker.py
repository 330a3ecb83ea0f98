"""The transport contract, against the RabbitMQ server on loopback."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import AMQPError

from adapters.rabbitmq.broker import RabbitMQBroker
from domain.events import WORK_QUEUES
from tests.contracts.broker import MAX_DELIVERIES, BrokerContract, BrokerFactory
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.rabbitmq

HOST, PORT = "127.0.0.1", 5672
URL = "amqp://guest:guest@{host}:{port}/%2F"


def delete_topology(exchange: str) -> None:
    """Remove every exchange and queue a deployment on ``exchange`` declares."""
    connection = pika.BlockingConnection(pika.URLParameters(URL.format(host=HOST, port=PORT)))
    try:
        for name in WORK_QUEUES:
            for queue in (f"{exchange}.{name}", f"{exchange}.{name}.dead"):
                channel = connection.channel()
                with contextlib.suppress(AMQPError):
                    channel.queue_delete(queue)
        for name in (exchange, f"{exchange}.dlx"):
            channel = connection.channel()
            with contextlib.suppress(AMQPError):
                channel.exchange_delete(name)
    finally:
        connection.close()


class TestRabbitMQBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self) -> Iterator[BrokerFactory]:
        exchange = f"test-{uuid.uuid4().hex}"
        brokers: list[RabbitMQBroker] = []

        def make(proxy: TcpProxy | None = None) -> RabbitMQBroker:
            port = PORT if proxy is None else proxy.port
            broker = RabbitMQBroker(
                url=URL.format(host=HOST, port=port),
                exchange=exchange,
                max_deliveries=MAX_DELIVERIES,
            )
            brokers.append(broker)
            return broker

        yield make
        for broker in brokers:
            broker.close()
        delete_topology(exchange)

    def server_address(self) -> tuple[str, int]:
        return (HOST, PORT)
