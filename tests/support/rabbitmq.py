"""RabbitMQ test helpers: a private status queue to read from, raw publishing, clean-up."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pika
from pika.exceptions import AMQPError, UnroutableError

from adapters.rabbitmq.topology import RabbitMQTopology
from domain.errors import PublishFailed
from domain.events import WORK_QUEUES, is_status_routing_key

HOST, PORT = "127.0.0.1", 5672
URL = "amqp://guest:guest@{host}:{port}/%2F"
RABBITMQ_URL = URL.format(host=HOST, port=PORT)


def delete_topology(exchange: str) -> None:
    """Remove every exchange and queue a deployment on ``exchange`` declares."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
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


class StatusQueue:
    """A private queue bound to the status routing keys, read one JSON body at a time."""

    def __init__(self, exchange: str, *routing_keys: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        self._channel = self._connection.channel()
        self._channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._queue = declared.method.queue
        for key in routing_keys:
            self._channel.queue_bind(self._queue, exchange, routing_key=key)

    def get_next_message(self, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, body = self._channel.basic_get(self._queue, auto_ack=True)
            if method is not None:
                parsed: dict[str, Any] = json.loads(body)
                return parsed
            self._connection.sleep(0.05)
        raise AssertionError(f"no message on the status queue within {timeout}s")

    def close(self) -> None:
        self._connection.close()


def publish_raw(url: str, topology: RabbitMQTopology, routing_key: str, body: bytes) -> None:
    """Publish ``body`` into the deployment (declared if need be), confirmed; work nobody is
    bound to is refused."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        topology.declare_all(connection)
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish(
                topology.exchange,
                routing_key,
                body,
                pika.BasicProperties(delivery_mode=2),
                mandatory=not is_status_routing_key(routing_key),
            )
        except UnroutableError:
            raise PublishFailed(
                f"no queue is bound to {routing_key!r} on exchange {topology.exchange!r}"
            ) from None
    finally:
        connection.close()
