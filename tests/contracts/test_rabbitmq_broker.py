"""The transport contract, against the RabbitMQ server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from adapters.rabbitmq.broker import RabbitMQBroker
from tests.contracts.backlog import BacklogContract
from tests.contracts.broker import (
    MAX_DELIVERIES,
    BrokerContract,
    BrokerFactory,
    DeadLettersContract,
)
from tests.support.proxy import TcpProxy
from tests.support.rabbitmq import HOST, PORT, URL, delete_topology

pytestmark = pytest.mark.rabbitmq


class TestRabbitMQBroker(BrokerContract, DeadLettersContract, BacklogContract):
    # Reading the head of a quorum queue spends a delivery (see adapters.rabbitmq.backlog).
    oldest_age_known = False

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
