"""The transport contract on the Redis server, plus what is particular to Redis Streams."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from adapters.redis.broker import RedisBroker
from domain.errors import PublishFailed
from domain.events import StatusEvent
from tests.contracts.backlog import BacklogContract
from tests.contracts.broker import (
    INGESTION,
    MAX_DELIVERIES,
    REDELIVERY_SECONDS,
    BrokerContract,
    BrokerFactory,
    DeadLettersContract,
    document_status,
    drain,
    uploaded,
    wait_for,
)
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.redis

HOST, PORT = "127.0.0.1", 6379


@pytest.fixture
def namespace() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis(host=HOST, port=PORT)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def open_brokers() -> Iterator[list[RedisBroker]]:
    brokers: list[RedisBroker] = []
    yield brokers
    for broker in brokers:
        broker.close()


def _factory(namespace: str, brokers: list[RedisBroker]) -> BrokerFactory:
    def make(proxy: TcpProxy | None = None) -> RedisBroker:
        port = PORT if proxy is None else proxy.port
        broker = RedisBroker(
            url=f"redis://{HOST}:{port}/0",
            max_deliveries=MAX_DELIVERIES,
            claim_idle_seconds=REDELIVERY_SECONDS,
            namespace=namespace,
        )
        brokers.append(broker)
        return broker

    return make


class TestRedisBroker(BrokerContract, DeadLettersContract, BacklogContract):
    @pytest.fixture
    def make_broker(self, namespace: str, open_brokers: list[RedisBroker]) -> BrokerFactory:
        return _factory(namespace, open_brokers)

    def server_address(self) -> tuple[str, int]:
        return (HOST, PORT)


@pytest.fixture
def make(namespace: str, open_brokers: list[RedisBroker]) -> BrokerFactory:
    return _factory(namespace, open_brokers)


def test_acknowledged_entries_are_deleted_from_the_stream(make: BrokerFactory) -> None:
    broker = make()
    assert isinstance(broker, RedisBroker)
    queue = broker.work_queue(*INGESTION)
    broker.publisher().publish(uploaded(1))
    assert len(drain(queue, 1, 10)) == 1
    assert broker.connection.client.xlen(broker.topology.work_stream("document.uploaded")) == 0


def test_a_stream_shared_by_two_queues_keeps_entries_until_both_are_done(
    make: BrokerFactory,
) -> None:
    broker = make()
    assert isinstance(broker, RedisBroker)
    ingestion = broker.work_queue("ingestion", ["document.uploaded"])
    audit = broker.work_queue("audit", ["document.uploaded"])
    event = uploaded(2)
    broker.publisher().publish(event)
    assert drain(ingestion, 1, 10) == [event]
    stream = broker.topology.work_stream("document.uploaded")
    assert broker.connection.client.xlen(stream) == 1, "the audit queue has not read it yet"
    assert drain(audit, 1, 10) == [event]
    assert broker.connection.client.xlen(stream) == 0


def test_a_consumer_that_keeps_dying_gets_its_work_dead_lettered(make: BrokerFactory) -> None:
    broker = make()
    assert isinstance(broker, RedisBroker)
    event = uploaded(3)
    broker.publisher().publish(event)
    attempts = []
    for _ in range(MAX_DELIVERIES):
        queue = broker.work_queue(*INGESTION)
        delivery = None
        while delivery is None:
            delivery = queue.receive(timeout=REDELIVERY_SECONDS + 5)
        attempts.append(delivery.attempt)
        queue.close()  # dies holding it
    assert attempts == list(range(1, MAX_DELIVERIES + 1))
    survivor = broker.work_queue(*INGESTION)
    assert survivor.receive(timeout=REDELIVERY_SECONDS + 1.5) is None
    (dead,) = broker.dead_letters().of("ingestion")
    assert dead.routing_key == "document.uploaded"
    assert f"after {MAX_DELIVERIES} deliveries" in dead.reason


def test_dead_letter_reports_the_reason_and_keeps_the_body(make: BrokerFactory) -> None:
    broker = make()
    queue = broker.work_queue(*INGESTION)
    broker.publisher().publish(uploaded(4))
    delivery = queue.receive(timeout=10)
    assert delivery is not None
    delivery.dead_letter("no handler for it")
    (dead,) = broker.dead_letters().of("ingestion")
    assert dead.reason == "no handler for it"
    assert b'"document_id":4' in dead.body
    assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None


def test_settling_twice_changes_nothing(make: BrokerFactory) -> None:
    broker = make()
    queue = broker.work_queue(*INGESTION)
    broker.publisher().publish(uploaded(5))
    delivery = queue.receive(timeout=10)
    assert delivery is not None
    delivery.ack()
    delivery.dead_letter("too late")
    assert broker.dead_letters().of("ingestion") == []


def test_a_queue_survives_its_streams_being_wiped(make: BrokerFactory, namespace: str) -> None:
    broker = make()
    assert isinstance(broker, RedisBroker)
    queue = broker.work_queue(*INGESTION)
    # What a restart of a server that keeps nothing on disk looks like to a consumer.
    broker.connection.client.delete(broker.topology.work_stream("document.uploaded"))
    assert queue.receive(timeout=0.2) is None
    event = uploaded(6)
    broker.publisher().publish(event)
    assert drain(queue, 1, 10) == [event]


def test_publishing_to_an_unreachable_server_raises() -> None:
    with TcpProxy(HOST, PORT) as proxy:
        proxy.cut()
        broker = RedisBroker(url=f"redis://{HOST}:{proxy.port}/0", namespace="unreachable")
        try:
            with pytest.raises(PublishFailed):
                broker.publisher().publish(uploaded(7))
        finally:
            broker.close()


def test_subscribing_to_an_unreachable_server_fails_instead_of_pretending() -> None:
    with TcpProxy(HOST, PORT) as proxy:
        proxy.cut()
        broker = RedisBroker(
            url=f"redis://{HOST}:{proxy.port}/0",
            namespace="unreachable",
            connect_timeout_seconds=1.0,
        )
        try:
            with pytest.raises(ConnectionError, match="did not confirm"):
                broker.subscribe_status(lambda event: None)
        finally:
            broker.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_deliveries"):
        RedisBroker(url=f"redis://{HOST}:{PORT}/0", max_deliveries=0)
    with pytest.raises(ValueError, match="claim_idle_seconds"):
        RedisBroker(url=f"redis://{HOST}:{PORT}/0", claim_idle_seconds=0)


class SilentProxy:
    """Forwards to Redis until ``silence()``: then its open links swallow every byte, unclosed.

    That is a link that died without a word (a vanished peer, a dropped route): no EOF, no
    reset, only silence. Links opened afterwards forward normally.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._silenced: list[threading.Event] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        for flag in self._silenced:
            flag.set()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, PORT))
            silenced = threading.Event()
            self._silenced.append(silenced)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, silenced), daemon=True
                ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, silenced: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not silenced.is_set():
                    sink.sendall(data)


def test_a_silently_dead_subscription_is_noticed_and_resubscribed(
    make: BrokerFactory, namespace: str
) -> None:
    proxy = SilentProxy()
    broker = None
    try:
        broker = RedisBroker(
            url=f"redis://{HOST}:{proxy.port}/0",
            namespace=namespace,
            health_check_seconds=1,
        )
        heard: list[StatusEvent] = []
        resyncs: list[bool] = []
        subscription = broker.subscribe_status(heard.append, lambda: resyncs.append(True))
        proxy.silence()
        wait_for(lambda: bool(resyncs) and subscription.alive, 20, "the resubscription")
        status = document_status(3, 4)
        make().publisher().publish(status)
        wait_for(lambda: status in heard, 10, "a status event after the silence")
    finally:
        if broker is not None:
            broker.close()
        proxy.close()
