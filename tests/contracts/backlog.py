"""The queue-backlog contract: what ``MessageBroker.backlogs`` tells on every transport.

Mixed into each transport's contract class (memory, RabbitMQ, NATS, Redis), which provides
``make_broker``; a transport that cannot tell the oldest request's age without consuming it
sets ``oldest_age_known = False`` and must then say ``None``.
"""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

from tests.contracts.broker import INGESTION, BrokerFactory, drain, uploaded, wait_for

QUEUE = INGESTION[0]
WAITING = 3


class BacklogContract:
    oldest_age_known: ClassVar[bool] = True

    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        raise NotImplementedError

    def test_the_backlog_counts_waiting_requests_and_their_oldest_ages(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        backlogs = broker.backlogs()
        idle = backlogs.of(QUEUE)
        assert (idle.queue, idle.waiting, idle.oldest_age_seconds) == (QUEUE, 0, None)
        assert idle.unacknowledged in (None, 0)
        publisher = broker.publisher()
        for n in range(WAITING):
            publisher.publish(uploaded(n))
        wait_for(lambda: backlogs.of(QUEUE).waiting == WAITING, 10, "three waiting requests")
        first = backlogs.of(QUEUE)
        time.sleep(1.2)
        later = backlogs.of(QUEUE)
        assert later.waiting == WAITING, "reading the backlog consumed a request"
        if self.oldest_age_known:
            assert first.oldest_age_seconds is not None
            assert later.oldest_age_seconds is not None
            assert 0 <= first.oldest_age_seconds < 30
            assert later.oldest_age_seconds >= first.oldest_age_seconds + 1.0
        else:
            assert later.oldest_age_seconds is None
        assert backlogs.of("embeddings").waiting == 0, "another queue's requests were counted"

        queue = broker.work_queue(*INGESTION)
        assert len(drain(queue, 1, 10)) == 1
        queue.close()
        wait_for(lambda: backlogs.of(QUEUE).waiting == WAITING - 1, 15, "one request fewer")

        queue = broker.work_queue(*INGESTION)
        assert len(drain(queue, WAITING - 1, 15)) == WAITING - 1
        wait_for(lambda: backlogs.of(QUEUE).waiting == 0, 15, "an empty queue")
        emptied = backlogs.of(QUEUE)
        assert emptied.oldest_age_seconds is None
        assert emptied.unacknowledged in (None, 0)

    def test_a_request_held_by_a_consumer_is_unacknowledged_not_waiting(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker()
        backlogs = broker.backlogs()
        queue = broker.work_queue(*INGESTION)
        broker.publisher().publish(uploaded(1))
        held = None
        deadline = time.monotonic() + 10
        while held is None and time.monotonic() < deadline:
            held = queue.receive(timeout=0.5)
        assert held is not None
        backlog = backlogs.of(QUEUE)
        assert backlog.waiting == 0
        assert backlog.oldest_age_seconds is None
        assert backlog.unacknowledged in (None, 1)
        held.ack()
        wait_for(lambda: backlogs.of(QUEUE).unacknowledged in (None, 0), 10, "the ack")
