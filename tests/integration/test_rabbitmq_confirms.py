"""The one place the RabbitMQ publisher reaches below pika's public API, checked on a server."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pika
import pytest

from adapters.rabbitmq.publisher import select_pipelined_confirms
from tests.support.rabbitmq import RABBITMQ_URL

pytestmark = pytest.mark.rabbitmq


def test_pipelined_confirms_ack_a_whole_batch_published_without_waiting() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        queue = f"test-confirms-{uuid.uuid4().hex}"
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        confirmed: set[int] = set()
        selected: list[bool] = []

        def on_confirm(frame: Any) -> None:
            assert isinstance(frame.method, pika.spec.Basic.Ack)
            upto = frame.method.delivery_tag
            confirmed.update(range(1, upto + 1) if frame.method.multiple else [upto])

        select_pipelined_confirms(channel, on_confirm, lambda _frame: selected.append(True))
        _process_until(connection, lambda: bool(selected))
        started = time.monotonic()
        for n in range(50):
            channel.basic_publish("", queue, f"{n}".encode(), mandatory=True)
        # Publishing did not wait for any confirm; they all come in afterwards.
        assert time.monotonic() - started < 5
        _process_until(connection, lambda: confirmed >= set(range(1, 51)))
        assert channel.queue_declare(queue, passive=True).method.message_count == 50
    finally:
        connection.close()


def _process_until(connection: pika.BlockingConnection, done: Any) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "rabbitmq did not answer in time"
        connection.process_data_events(time_limit=0.1)
