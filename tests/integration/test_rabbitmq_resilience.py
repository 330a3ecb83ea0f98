"""RabbitMQ behaviour beyond the shared contract: dead connections, crashing consumers, set-up."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from adapters.rabbitmq import RabbitMQBroker, RabbitMQPublisher
from domain.errors import PublishFailed
from domain.events import DocumentUploaded, Event, StatusEvent, encode
from tests.contracts.broker import INGESTION, document_status, drain, uploaded, wait_for
from tests.support.processes import free_port
from tests.support.proxy import TcpProxy
from tests.support.rabbitmq import delete_topology
from tests.support.raw_messages import publish_raw

pytestmark = pytest.mark.rabbitmq

HOST, PORT = "127.0.0.1", 5672
URL = "amqp://guest:guest@127.0.0.1:{port}/%2F"

BrokerMaker = Callable[..., RabbitMQBroker]


@pytest.fixture
def exchange() -> Iterator[str]:
    name = f"test-resilience-{uuid.uuid4().hex}"
    yield name
    delete_topology(name)


@pytest.fixture
def make_broker(exchange: str) -> Iterator[BrokerMaker]:
    brokers: list[RabbitMQBroker] = []

    def make(*, port: int = PORT, max_deliveries: int = 3, query: str = "") -> RabbitMQBroker:
        broker = RabbitMQBroker(
            url=URL.format(port=port) + query, exchange=exchange, max_deliveries=max_deliveries
        )
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.close()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(HOST, PORT) as proxy:
        yield proxy


def test_a_publisher_whose_idle_connection_died_reconnects_on_next_use(
    make_broker: BrokerMaker, proxy: TcpProxy
) -> None:
    publisher = make_broker(port=proxy.port).publisher()
    publisher.publish(uploaded(1))
    proxy.cut()  # the link dies while the publisher sits idle
    proxy.restore()

    publisher.publish(uploaded(2))  # noticed before sending: no failure reaches the caller

    got = drain(make_broker().work_queue(*INGESTION), 2, 15)
    assert [e.document_id for e in got if isinstance(e, DocumentUploaded)] == [1, 2]


def test_a_consumer_reconnects_after_a_cut_and_keeps_receiving(
    make_broker: BrokerMaker, proxy: TcpProxy
) -> None:
    queue = make_broker(port=proxy.port).work_queue(*INGESTION)
    publisher = make_broker().publisher()
    first = uploaded(1)
    publisher.publish(first)
    assert drain(queue, 1, 10) == [first]

    proxy.cut()
    threading.Timer(1.0, proxy.restore).start()
    after = uploaded(2)
    publisher.publish(after)

    # The first ack may have died with the link (at least once): it can come back too.
    got: list[Event] = []
    deadline = time.monotonic() + 30
    while after not in got and time.monotonic() < deadline:
        got += drain(queue, 1, 1)
    assert after in got
    assert {e.event_id for e in got} <= {after.event_id, first.event_id}


def test_a_delivery_held_across_a_cut_comes_back(make_broker: BrokerMaker, proxy: TcpProxy) -> None:
    queue = make_broker(port=proxy.port).work_queue(*INGESTION)
    event = uploaded(3)
    make_broker().publisher().publish(event)
    held = queue.receive(timeout=10)
    assert held is not None

    proxy.cut()
    proxy.restore()
    held.ack()  # too late: the connection it came on is gone

    redelivered = None
    deadline = time.monotonic() + 30
    while redelivered is None and time.monotonic() < deadline:
        redelivered = queue.receive(timeout=0.5)
    assert redelivered is not None
    assert redelivered.event == event
    assert redelivered.attempt == 2
    redelivered.ack()


@pytest.mark.slow
def test_a_long_job_keeps_its_connection_alive(make_broker: BrokerMaker) -> None:
    # With one-second heartbeats, a connection nobody drives would be closed within seconds.
    broker = make_broker(query="?heartbeat=1")
    queue = broker.work_queue(*INGESTION)
    event = uploaded(4)
    broker.publisher().publish(event)
    delivery = queue.receive(timeout=10)
    assert delivery is not None

    time.sleep(5)  # the job takes longer than several heartbeat intervals
    delivery.ack()

    assert queue.receive(timeout=2) is None, "the acknowledged job was delivered again"
    assert broker.dead_letters().of("ingestion") == []


def test_consumers_that_crash_holding_work_get_it_dead_lettered_by_the_broker(
    make_broker: BrokerMaker,
) -> None:
    broker = make_broker(max_deliveries=2)
    event = uploaded(5)
    broker.publisher().publish(event)
    attempts = []
    for _ in range(2):
        crashing = make_broker(max_deliveries=2).work_queue(*INGESTION)
        delivery = crashing.receive(timeout=10)
        assert delivery is not None
        attempts.append(delivery.attempt)
        crashing.close()  # dies without settling

    assert attempts == [1, 2]
    wait_for(lambda: len(broker.dead_letters().of("ingestion")) == 1, 15, "the dead letter")
    (dead,) = broker.dead_letters().of("ingestion")
    assert dead.body == encode(event)
    assert "delivery_limit" in dead.reason
    assert dead.routing_key == "document.uploaded"
    assert broker.work_queue(*INGESTION).receive(timeout=1) is None


def test_dead_lettering_keeps_the_original_body_and_the_reason(make_broker: BrokerMaker) -> None:
    broker = make_broker()
    queue = broker.work_queue(*INGESTION)
    event = uploaded(6)
    broker.publisher().publish(event)
    delivery = queue.receive(timeout=10)
    assert delivery is not None

    delivery.dead_letter("the file is gone")

    assert broker.dead_letters().of("ingestion")[0].reason == "the file is gone"
    assert broker.dead_letters().of("ingestion")[0].body == encode(event)
    # Looking does not consume.
    assert len(broker.dead_letters().of("ingestion")) == 1
    assert queue.receive(timeout=1) is None


def test_queues_declared_with_another_delivery_limit_are_used_as_they_are(
    make_broker: BrokerMaker,
) -> None:
    make_broker(max_deliveries=3).publisher().publish(uploaded(7))
    other = make_broker(max_deliveries=5)
    other.publisher().publish(uploaded(8))

    got = drain(other.work_queue(*INGESTION), 2, 15)

    assert len(got) == 2


def test_a_malformed_status_message_is_dropped_and_the_subscription_carries_on(
    make_broker: BrokerMaker,
) -> None:
    broker = make_broker()
    heard: list[StatusEvent] = []
    subscription = broker.subscribe_status(heard.append)
    publish_raw(broker, "document.status.updated", b"{not json")
    good = document_status(1, 2)
    broker.publisher().publish(good)

    wait_for(lambda: bool(heard), 10, "the good status event")
    assert heard == [good]
    assert subscription.alive
    subscription.close()
    assert not subscription.alive


def test_a_publish_to_an_unreachable_broker_raises(exchange: str) -> None:
    publisher = RabbitMQPublisher(rabbitmq_url=URL.format(port=free_port()), exchange=exchange)
    with pytest.raises(PublishFailed, match="did not confirm"):
        publisher.publish(uploaded(1))


def test_a_closed_publisher_refuses_to_publish(exchange: str) -> None:
    publisher = RabbitMQPublisher(rabbitmq_url=URL.format(port=PORT), exchange=exchange)
    publisher.close()
    with pytest.raises(PublishFailed, match="closed"):
        publisher.publish(uploaded(1))


def test_a_closed_work_queue_refuses_to_receive(make_broker: BrokerMaker) -> None:
    queue = make_broker().work_queue(*INGESTION)
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        queue.receive(timeout=0.1)


@pytest.mark.parametrize(
    ("exchange_name", "max_deliveries", "prefetch", "message"),
    [("", 3, 8, "exchange"), ("x", 0, 8, "max_deliveries"), ("x", 3, 0, "prefetch")],
)
def test_invalid_settings_are_rejected_before_connecting(
    exchange_name: str, max_deliveries: int, prefetch: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RabbitMQBroker(
            url=URL.format(port=free_port()),
            exchange=exchange_name,
            max_deliveries=max_deliveries,
            prefetch=prefetch,
        )


def test_closing_the_broker_closes_everything_it_opened(make_broker: BrokerMaker) -> None:
    broker = make_broker()
    publisher = broker.publisher()
    publisher.publish(uploaded(1))
    queue = broker.work_queue(*INGESTION)
    assert queue.receive(timeout=10) is not None  # held, never settled
    subscription = broker.subscribe_status(lambda event: None)

    broker.close()

    assert not subscription.alive
    with pytest.raises(PublishFailed, match="closed"):
        publisher.publish(uploaded(2))
    with pytest.raises(RuntimeError, match="closed"):
        queue.receive(timeout=0.1)
    # The unsettled delivery went back to the queue with the closed connection.
    assert [e.event_id for e in drain(make_broker().work_queue(*INGESTION), 1, 10)] != []
