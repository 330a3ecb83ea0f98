"""The transport contracts, one base class each, subclassed per transport (memory, RabbitMQ,
NATS, Redis): ``BrokerContract`` for the broker, ``DeadLettersContract`` for its dead letters.

A subclass provides ``make_broker``: a factory of brokers that share one private namespace
(exchange, stream or key prefix) for the test, optionally connected through a ``TcpProxy``,
with a short redelivery timeout (``REDELIVERY_SECONDS``) and ``MAX_DELIVERIES`` attempts.
Raw bodies, valid or not, are published with each transport's own client (``publish_raw``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

import pytest

from domain.errors import PublishFailed
from domain.events import (
    DocumentStatusUpdated,
    DocumentUploaded,
    Event,
    StatusEvent,
    WorkspaceStatusUpdated,
    encode,
    utc_now,
)
from domain.ports import DeadLetter, Delivery, MessageBroker, WorkQueue
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.support.proxy import TcpProxy
from tests.support.raw_messages import publish_raw

MAX_DELIVERIES = 3
REDELIVERY_SECONDS = 1.0
INGESTION = ("ingestion", ("document.uploaded",))


BrokerFactory = Callable[..., MessageBroker]


def uploaded(n: int) -> DocumentUploaded:
    return DocumentUploaded(
        document_id=n, user_id=1, workspace_id=1, file_path=f"/f/{n}.txt", version=1
    )


def document_status(n: int, version: int) -> DocumentStatusUpdated:
    return DocumentStatusUpdated(
        document_id=n,
        user_id=7,
        workspace_id=1,
        filename="a.txt",
        status=DocumentProcessingStatus.PROCESSING,
        error=None,
        chunk_count=0,
        metadata={"k": [1, 2]},
        progress=Progress.plan(["Parsing", "Chunking text"]).begin("Parsing"),
        version=version,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def dead_letters(broker: MessageBroker, queue: str = "ingestion") -> list[DeadLetter]:
    return broker.dead_letters().of(queue)


def drain(queue: WorkQueue, count: int, timeout: float) -> list[Event]:
    """Receive and acknowledge ``count`` deliveries."""
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        delivery = queue.receive(timeout=0.5)
        if delivery is not None:
            got.append(delivery.event)
            delivery.ack()
    return got


class BrokerContract:
    """Behaviour every transport must show, against a real server where there is one."""

    supports_connection_cut: ClassVar[bool] = True

    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        raise NotImplementedError

    def test_round_trip_delivers_the_exact_event(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        event = uploaded(1)
        broker.publisher().publish(event)
        delivery = queue.receive(timeout=10)
        assert delivery is not None
        assert delivery.event == event
        assert delivery.attempt == 1
        delivery.ack()
        assert queue.receive(timeout=0.5) is None

    def test_work_is_queued_before_any_consumer_exists(self, make_broker: BrokerFactory) -> None:
        make_broker().publisher().publish(uploaded(5))
        queue = make_broker().work_queue(*INGESTION)
        assert [e.event_id for e in drain(queue, 1, 10)] != []

    def test_competing_consumers_each_get_a_message_once(self, make_broker: BrokerFactory) -> None:
        publisher = make_broker().publisher()
        queues = [make_broker().work_queue(*INGESTION) for _ in range(2)]
        sent = [uploaded(n) for n in range(20)]
        for event in sent:
            publisher.publish(event)
        received: list[list[str]] = [[], []]
        lock = threading.Lock()

        def consume(index: int) -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with lock:
                    if sum(map(len, received)) >= len(sent):
                        return
                delivery = queues[index].receive(timeout=0.2)
                if delivery is None:
                    continue
                time.sleep(0.01)  # a little work, so that both consumers get a share
                delivery.ack()
                with lock:
                    received[index].append(delivery.event.event_id)

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = received[0] + received[1]
        assert sorted(everything) == sorted(e.event_id for e in sent)
        assert all(received), f"one consumer got nothing: {[len(r) for r in received]}"

    def test_unacknowledged_work_is_redelivered_to_another_consumer(
        self, make_broker: BrokerFactory
    ) -> None:
        first = make_broker().work_queue(*INGESTION)
        second = make_broker().work_queue(*INGESTION)
        event = uploaded(3)
        make_broker().publisher().publish(event)
        taken = first.receive(timeout=10)
        assert taken is not None
        assert taken.event.event_id == event.event_id
        first.close()  # the consumer dies holding the delivery
        redelivered = None
        deadline = time.monotonic() + REDELIVERY_SECONDS + 15
        while redelivered is None and time.monotonic() < deadline:
            redelivered = second.receive(timeout=0.5)
        assert redelivered is not None, "the unacknowledged delivery never came back"
        assert redelivered.event == event
        assert redelivered.attempt >= 2
        redelivered.ack()

    def test_malformed_bodies_are_dead_lettered_and_good_work_flows(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        bad = [
            b"not json at all",
            b'{"schema": 1, "routing_key": "document.uploaded", "message": {"x": 1}}',
            b'{"schema": 99, "routing_key": "document.uploaded", "message": {}}',
            b"\xff\xfe\x00binary",
        ]
        for body in bad:
            publish_raw(broker, "document.uploaded", body)
        good = uploaded(9)
        broker.publisher().publish(good)
        assert drain(queue, 1, 15) == [good]
        wait_for(lambda: len(dead_letters(broker)) >= len(bad), 15, "dead letters")
        dead = dead_letters(broker)
        assert sorted(d.body for d in dead) == sorted(bad)
        assert all(d.reason for d in dead)

    def test_failing_work_is_dead_lettered_after_bounded_attempts(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        poison, good = uploaded(11), uploaded(12)
        publisher = broker.publisher()
        publisher.publish(poison)
        publisher.publish(good)
        attempts: list[int] = []
        good_seen = False
        deadline = time.monotonic() + 30 + MAX_DELIVERIES * REDELIVERY_SECONDS
        while time.monotonic() < deadline and not (good_seen and len(attempts) >= MAX_DELIVERIES):
            delivery = queue.receive(timeout=0.5)
            if delivery is None:
                continue
            if delivery.event.event_id == poison.event_id:
                attempts.append(delivery.attempt)
                delivery.retry("handler keeps failing")
            else:
                good_seen = True
                delivery.ack()
        assert good_seen
        assert attempts == list(range(1, MAX_DELIVERIES + 1))
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None

    def test_status_broadcast_reaches_every_subscriber_instance(
        self, make_broker: BrokerFactory
    ) -> None:
        received: list[list[StatusEvent]] = [[], []]
        subscriptions = [make_broker().subscribe_status(received[i].append) for i in range(2)]
        sent: list[StatusEvent] = [document_status(1, v) for v in range(1, 6)]
        sent.append(
            WorkspaceStatusUpdated(
                workspace_id=4,
                user_id=7,
                name="w",
                status=WorkspaceStatus.READY,
                message=None,
                version=2,
            )
        )
        publisher = make_broker().publisher()
        for event in sent:
            publisher.publish(event)
        wait_for(lambda: all(len(r) == len(sent) for r in received), 15, "both subscribers")
        assert received[0] == sent
        assert received[1] == sent
        assert all(s.alive for s in subscriptions)
        for subscription in subscriptions:
            subscription.close()

    def test_work_and_status_do_not_mix(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        heard: list[StatusEvent] = []
        broker.subscribe_status(heard.append)
        queue = broker.work_queue(*INGESTION)
        publisher = broker.publisher()
        publisher.publish(uploaded(1))
        publisher.publish(document_status(1, 2))
        assert [e.routing_key for e in drain(queue, 2, 3)] == ["document.uploaded"]
        wait_for(lambda: len(heard) == 1, 10, "the status event")
        assert heard[0].routing_key == "document.status.updated"

    def test_connection_cut_loses_no_confirmed_message(self, make_broker: BrokerFactory) -> None:
        if not self.supports_connection_cut:
            pytest.skip("an in-process transport has no connection to cut")
        with TcpProxy(*self.server_address()) as proxy:
            through_proxy = make_broker(proxy=proxy)
            publisher = through_proxy.publisher()
            resyncs: list[bool] = []
            heard: list[StatusEvent] = []
            subscription = through_proxy.subscribe_status(
                heard.append, lambda: resyncs.append(True)
            )
            sent = [uploaded(n) for n in range(30)]
            failures = 0
            for n, event in enumerate(sent):
                if n == 10:
                    proxy.cut()
                    threading.Timer(2.0, proxy.restore).start()
                deadline = time.monotonic() + 60
                while True:
                    try:
                        publisher.publish(event)
                        break
                    except PublishFailed:
                        failures += 1
                        assert time.monotonic() < deadline, "publishing never recovered"
                        time.sleep(0.2)
            assert failures > 0, "a publish during the cut claimed success"
            consumer = make_broker().work_queue(*INGESTION)
            got = drain(consumer, len(sent), 30)
            assert {e.event_id for e in sent} <= {e.event_id for e in got}
            # The subscription behind the proxy comes back, says so, and hears new events.
            wait_for(lambda: subscription.alive and bool(resyncs), 30, "the resubscription")
            status = document_status(2, 9)
            make_broker().publisher().publish(status)
            wait_for(lambda: status in heard, 15, "a status event after the cut")
            subscription.close()

    def test_publish_many_delivers_a_mixed_batch_in_order(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        heard: list[StatusEvent] = []
        subscription = broker.subscribe_status(heard.append)
        queue = broker.work_queue(*INGESTION)
        work = [uploaded(n) for n in range(25)]
        status: list[StatusEvent] = [document_status(1, v) for v in range(1, 26)]
        batch: list[Event] = [event for pair in zip(work, status, strict=True) for event in pair]
        make_broker().publisher().publish_many(batch)
        assert drain(queue, len(work), 30) == work
        wait_for(lambda: len(heard) >= len(status), 15, "every status event of the batch")
        assert heard == status
        assert queue.receive(timeout=0.5) is None
        make_broker().publisher().publish_many([])
        subscription.close()

    def test_publish_many_during_a_cut_never_claims_success(
        self, make_broker: BrokerFactory
    ) -> None:
        if not self.supports_connection_cut:
            pytest.skip("an in-process transport has no connection to cut")
        with TcpProxy(*self.server_address()) as proxy:
            publisher = make_broker(proxy=proxy).publisher()
            before_the_cut = uploaded(100)
            publisher.publish(before_the_cut)
            batch: list[Event] = [uploaded(n) for n in range(20)]
            batch += [document_status(3, v) for v in range(1, 11)]
            proxy.cut()
            with pytest.raises(PublishFailed):
                publisher.publish_many(batch)
            proxy.restore()
            deadline = time.monotonic() + 60
            while True:
                try:
                    publisher.publish_many(batch)
                    break
                except PublishFailed:
                    assert time.monotonic() < deadline, "publishing never recovered"
                    time.sleep(0.2)
            # At least once: the batch may have been taken twice, in part or in full.
            wanted = {event.event_id for event in batch if not isinstance(event, StatusEvent)}
            wanted.add(before_the_cut.event_id)
            consumer = make_broker().work_queue(*INGESTION)
            seen: set[str] = set()
            deadline = time.monotonic() + 30
            while not wanted <= seen and time.monotonic() < deadline:
                delivery = consumer.receive(timeout=0.5)
                if delivery is not None:
                    seen.add(delivery.event.event_id)
                    delivery.ack()
            assert wanted <= seen, f"{len(wanted - seen)} confirmed work requests were lost"

    def server_address(self) -> tuple[str, int]:
        raise NotImplementedError


def take(queue: WorkQueue, timeout: float = 10) -> Delivery:
    delivery = queue.receive(timeout=timeout)
    assert delivery is not None, f"nothing delivered within {timeout}s"
    return delivery


class DeadLettersContract:
    """What an operator learns from ``DeadLetters`` on every transport."""

    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        raise NotImplementedError

    def test_a_dead_lettered_request_is_listed_with_its_event_and_reason(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        event = uploaded(31)
        broker.publisher().publish(event)
        take(queue).dead_letter("no handler for it")
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        (letter,) = dead_letters(broker)
        assert letter.queue == "ingestion"
        assert letter.routing_key == "document.uploaded"
        assert letter.event == event
        assert letter.body == encode(event)
        assert letter.reason == "no handler for it"
        assert letter.attempts in (None, 1)
        if letter.last_failed_at is not None:
            assert abs(letter.last_failed_at - utc_now()) < timedelta(minutes=1)

    def test_listing_consumes_nothing_and_every_instance_sees_the_same(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        broker.publisher().publish(uploaded(32))
        take(queue).dead_letter("set aside")
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        assert dead_letters(broker) == dead_letters(broker)
        assert dead_letters(make_broker()) == dead_letters(broker)
        assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None

    def test_exhausted_work_records_its_attempts_and_failure_times(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        broker.publisher().publish(uploaded(33))
        for _ in range(MAX_DELIVERIES):
            take(queue, 10 + REDELIVERY_SECONDS).retry("keeps failing")
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        (letter,) = dead_letters(broker)
        assert letter.reason.startswith("keeps failing")
        assert letter.attempts in (None, MAX_DELIVERIES)
        if letter.first_failed_at is not None and letter.last_failed_at is not None:
            assert letter.first_failed_at <= letter.last_failed_at

    def test_a_malformed_body_is_kept_as_it_came_with_no_event(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        good = uploaded(34)
        broker.publisher().publish(good)  # declares the topology a foreign producer relies on
        assert drain(queue, 1, 10) == [good]
        publish_raw(broker, "document.uploaded", b"\xff not json")
        assert queue.receive(timeout=2) is None
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        (letter,) = dead_letters(broker)
        assert letter.body == b"\xff not json"
        assert letter.event is None
        assert "json" in letter.reason.lower()

    def test_a_queue_without_dead_letters_lists_none(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        broker.work_queue(*INGESTION)
        assert dead_letters(broker, "graph") == []
        assert dead_letters(broker) == []

    def test_a_requeued_letter_is_delivered_afresh_and_leaves_the_list(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        kept, requeued = uploaded(35), uploaded(36)
        publisher = broker.publisher()
        publisher.publish(kept)
        publisher.publish(requeued)
        for _ in range(2):
            take(queue).dead_letter("the file was missing")
        wait_for(lambda: len(dead_letters(broker)) == 2, 15, "the dead letters")
        (letter,) = [d for d in dead_letters(broker) if d.event == requeued]
        assert broker.dead_letters().requeue("ingestion", letter.letter_id)
        again = take(queue, 15)
        assert again.event == requeued
        assert again.attempt == 1
        again.ack()
        assert [d.event for d in dead_letters(broker)] == [kept]
        assert not broker.dead_letters().requeue("ingestion", letter.letter_id)
        assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None

    def test_a_discarded_letter_is_gone_for_good(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        queue = broker.work_queue(*INGESTION)
        broker.publisher().publish(uploaded(37))
        take(queue).dead_letter("not wanted")
        wait_for(lambda: len(dead_letters(broker)) == 1, 15, "the dead letter")
        (letter,) = dead_letters(broker)
        assert not broker.dead_letters().discard("graph", letter.letter_id)
        assert broker.dead_letters().discard("ingestion", letter.letter_id)
        assert dead_letters(broker) == []
        assert not broker.dead_letters().discard("ingestion", letter.letter_id)
        assert not broker.dead_letters().requeue("ingestion", "no-such-letter")
        assert queue.receive(timeout=REDELIVERY_SECONDS + 1) is None
