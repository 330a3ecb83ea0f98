"""The transport contract on the real NATS server (JetStream), plus what is NATS-specific."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import nats
import pytest
from nats.js.errors import NotFoundError

from adapters.nats.broker import NatsBroker
from adapters.nats.topology import NatsTopology
from domain.errors import PublishFailed
from domain.events import StatusEvent, encode
from tests.contracts.backlog import BacklogContract
from tests.contracts.broker import (
    INGESTION,
    MAX_DELIVERIES,
    REDELIVERY_SECONDS,
    BrokerContract,
    BrokerFactory,
    DeadLettersContract,
    document_status,
    uploaded,
    wait_for,
)
from tests.support.proxy import TcpProxy
from tests.support.raw_messages import publish_raw

pytestmark = pytest.mark.nats

NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"

NatsBrokerFactory = Callable[..., NatsBroker]


async def _delete_streams(topology: NatsTopology) -> None:
    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        for stream in (topology.work_stream, topology.dead_stream):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
    finally:
        await client.close()


async def _stored_work(topology: NatsTopology) -> int:
    client = await nats.connect(NATS_URL)
    try:
        info = await client.jetstream().stream_info(topology.work_stream)
        return info.state.messages
    finally:
        await client.close()


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(_delete_streams(NatsTopology(name)))


@pytest.fixture
def nats_brokers(namespace: str) -> Iterator[NatsBrokerFactory]:
    opened: list[NatsBroker] = []

    def make(proxy: TcpProxy | None = None) -> NatsBroker:
        url = f"nats://127.0.0.1:{proxy.port}" if proxy is not None else NATS_URL
        broker = NatsBroker(
            url=url,
            max_deliveries=MAX_DELIVERIES,
            ack_wait=REDELIVERY_SECONDS,
            namespace=namespace,
        )
        opened.append(broker)
        return broker

    yield make
    for broker in opened:
        broker.close()


class TestNatsBroker(BrokerContract, DeadLettersContract, BacklogContract):
    @pytest.fixture
    def make_broker(self, nats_brokers: NatsBrokerFactory) -> BrokerFactory:
        return nats_brokers

    def server_address(self) -> tuple[str, int]:
        return (NATS_HOST, NATS_PORT)


def test_an_unsettled_last_attempt_is_dead_lettered_not_lost(
    nats_brokers: NatsBrokerFactory, namespace: str
) -> None:
    holder, other = nats_brokers(), nats_brokers()
    held_queue = holder.work_queue(*INGESTION)
    other_queue = other.work_queue(*INGESTION)
    poison = uploaded(21)
    holder.publisher().publish(poison)
    for attempt in range(1, MAX_DELIVERIES):
        delivery = held_queue.receive(timeout=10)
        assert delivery is not None
        assert delivery.attempt == attempt
        delivery.retry("failing")
    last = held_queue.receive(timeout=10)
    assert last is not None
    assert last.attempt == MAX_DELIVERIES
    # The consumer stalls past the acknowledgement wait on its last attempt: JetStream stops
    # delivering and announces it; the broker moves the message to the dead letters.
    deadline = time.monotonic() + REDELIVERY_SECONDS + 15
    while not other.dead_letters().of("ingestion") and time.monotonic() < deadline:
        assert other_queue.receive(timeout=0.5) is None, "delivered beyond max_deliveries"
    dead = other.dead_letters().of("ingestion")
    assert [d.body for d in dead] == [encode(poison)]
    assert "not settled after" in dead[0].reason
    assert asyncio.run(_stored_work(NatsTopology(namespace))) == 0
    last.ack()  # too late to matter, and harmless
    assert len(other.dead_letters().of("ingestion")) == 1


def test_reading_dead_letters_consumes_nothing_and_keeps_the_reason(
    nats_brokers: NatsBrokerFactory,
) -> None:
    broker = nats_brokers()
    queue = broker.work_queue(*INGESTION)
    broker.publisher().publish(uploaded(1))
    delivery = queue.receive(timeout=10)
    assert delivery is not None
    reason = "préparé: 100% failed\nsecond line"
    delivery.dead_letter(reason)
    wait_for(lambda: len(broker.dead_letters().of("ingestion")) == 1, 10, "the dead letter")
    again = nats_brokers().dead_letters().of("ingestion")
    assert [d.reason for d in again] == [reason]
    assert again[0].routing_key == "document.uploaded"
    assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None


def test_republishing_the_same_event_queues_it_once(nats_brokers: NatsBrokerFactory) -> None:
    broker = nats_brokers()
    queue = broker.work_queue(*INGESTION)
    event = uploaded(7)
    publisher = broker.publisher()
    publisher.publish(event)
    publisher.publish(event)  # a retry after an unconfirmed publish
    delivery = queue.receive(timeout=10)
    assert delivery is not None
    assert delivery.event == event
    delivery.ack()
    assert queue.receive(timeout=1) is None


def test_a_slow_status_listener_does_not_hold_up_the_others(
    nats_brokers: NatsBrokerFactory,
) -> None:
    broker = nats_brokers()
    release = threading.Event()
    blocked: list[StatusEvent] = []
    quick: list[StatusEvent] = []

    def stuck(event: StatusEvent) -> None:
        blocked.append(event)
        release.wait()

    slow_subscription = broker.subscribe_status(stuck)
    broker.subscribe_status(quick.append)
    publisher = nats_brokers().publisher()
    for version in range(1, 6):
        publisher.publish(document_status(1, version))
    wait_for(lambda: len(quick) == 5, 10, "the quick listener")
    # The slow listener's thread may be scheduled late on a busy machine, but never gets past
    # the first event while it is stuck on it.
    wait_for(lambda: len(blocked) == 1, 10, "the slow listener's first event")
    assert len(blocked) == 1
    release.set()
    wait_for(lambda: len(blocked) == 5, 10, "the slow listener catching up")
    slow_subscription.close()


def test_binding_errors_are_clear(nats_brokers: NatsBrokerFactory) -> None:
    broker = nats_brokers()
    broker.work_queue(*INGESTION)
    with pytest.raises(ValueError, match="exactly one routing key"):
        broker.work_queue("both", ["document.uploaded", "workspace.created"])
    with pytest.raises(ValueError, match="already bound"):
        broker.work_queue("ingestion", ["workspace.created"])
    with pytest.raises(ValueError, match="already consumed by another work queue"):
        broker.work_queue("second-ingestion", ["document.uploaded"])
    with pytest.raises(ValueError, match="namespace"):
        NatsBroker(url=NATS_URL, namespace="Not Valid")


def test_an_unreachable_server_fails_at_start_naming_it() -> None:
    with TcpProxy(NATS_HOST, NATS_PORT) as proxy:
        proxy.cut()
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{proxy.port}"):
            NatsBroker(url=f"nats://127.0.0.1:{proxy.port}", namespace="unreachable")


def test_publishing_on_a_closed_broker_fails_loudly(nats_brokers: NatsBrokerFactory) -> None:
    broker = nats_brokers()
    publisher = broker.publisher()
    broker.close()
    with pytest.raises(PublishFailed):
        publisher.publish(uploaded(1))


def test_a_malformed_status_message_is_dropped_and_the_subscription_carries_on(
    nats_brokers: NatsBrokerFactory,
) -> None:
    broker = nats_brokers()
    heard: list[StatusEvent] = []
    subscription = broker.subscribe_status(heard.append)
    publish_raw(broker, "document.status.updated", b"{not json")
    good = document_status(3, 4)
    broker.publisher().publish(good)
    wait_for(lambda: len(heard) == 1, 10, "the good status event")
    assert heard == [good]
    assert subscription.alive
