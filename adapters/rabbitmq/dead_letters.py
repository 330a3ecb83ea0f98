"""Dead letters on RabbitMQ: each work queue's quorum queue ``<exchange>.<name>.dead``.

Work set aside by a consumer carries headers saying why, from which routing key, after how
many deliveries and when; work the broker set aside itself (its delivery limit) carries the
broker's ``x-death`` record instead.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pika
from pika.spec import BasicProperties

from adapters.backoff import Backoff, retry_once
from adapters.messaging import connection_name
from adapters.rabbitmq.connection import LINK_ERRORS, RabbitMQConnection, connection_parameters
from adapters.rabbitmq.topology import RabbitMQTopology
from domain.events import utc_now
from domain.ports import DeadLetter, DeadLetters

PERSISTENT = 2
REASON_HEADER = "x-insighthub-dead-letter-reason"
ROUTING_KEY_HEADER = "x-insighthub-original-routing-key"
ATTEMPTS_HEADER = "x-insighthub-attempts"
FAILED_AT_HEADER = "x-insighthub-dead-lettered-at"


def dead_letter_properties(reason: str, routing_key: str, attempts: int) -> BasicProperties:
    """The properties of a copy a consumer sets aside: persistent, with why and when."""
    return pika.BasicProperties(
        delivery_mode=PERSISTENT,
        # The letter's id; a message the broker set aside keeps its own (the event id).
        message_id=uuid.uuid4().hex,
        headers={
            REASON_HEADER: reason,
            ROUTING_KEY_HEADER: routing_key,
            ATTEMPTS_HEADER: attempts,
            FAILED_AT_HEADER: utc_now(),
        },
    )


class RabbitMQDeadLetters(DeadLetters):
    """Peeks at a dead-letter queue on a connection of its own; nothing is consumed."""

    def __init__(self, url: str, topology: RabbitMQTopology) -> None:
        self._topology = topology
        self._connection = RabbitMQConnection(
            connection_parameters(url, connection_name("inspector", topology.exchange))
        )
        self._backoff = Backoff()

    def of(self, queue: str) -> list[DeadLetter]:
        with self._connection.lock:
            return retry_once(
                lambda: self._peek(queue),
                transient=LINK_ERRORS,
                backoff=self._backoff,
                on_transient=lambda _error, _attempt: self._connection.drop(),
            )

    def requeue(self, queue: str, letter_id: str) -> bool:
        return self._take(queue, letter_id, requeue=True)

    def discard(self, queue: str, letter_id: str) -> bool:
        return self._take(queue, letter_id, requeue=False)

    def close(self) -> None:
        self._connection.close()

    def _take(self, queue: str, letter_id: str, *, requeue: bool) -> bool:
        """Find the letter among the queue's messages; publish its body again (confirmed) if
        ``requeue``, then ack it. Not retried: a lost link leaves the letter where it was."""
        if not letter_id:
            return False
        with self._connection.lock:
            try:
                return self._find_and_take(queue, letter_id, requeue=requeue)
            except LINK_ERRORS:
                self._connection.drop()
                raise

    def _find_and_take(self, queue: str, letter_id: str, *, requeue: bool) -> bool:
        connection = self._connection.get()
        self._topology.declare_dead_queue(connection, queue)
        channel = connection.channel()
        try:
            while True:
                method, properties, body = channel.basic_get(
                    self._topology.dead_queue(queue), auto_ack=False
                )
                if method is None:
                    return False
                if properties.message_id != letter_id:
                    continue
                if requeue:
                    routing_key = self._letter(queue, properties, body).routing_key
                    publisher = connection.channel()
                    publisher.confirm_delivery()
                    publisher.basic_publish(
                        self._topology.exchange,
                        routing_key,
                        body,
                        pika.BasicProperties(
                            content_type="application/json",
                            delivery_mode=PERSISTENT,
                            type=routing_key,
                        ),
                        mandatory=True,
                    )
                    publisher.close()
                channel.basic_ack(method.delivery_tag)
                return True
        finally:
            # Every other message the channel got goes back to the queue, untouched.
            if channel.is_open:
                channel.close()

    def _peek(self, queue: str) -> list[DeadLetter]:
        connection = self._connection.get()
        self._topology.declare_dead_queue(connection, queue)
        channel = connection.channel()
        letters: list[DeadLetter] = []
        try:
            while True:
                method, properties, body = channel.basic_get(
                    self._topology.dead_queue(queue), auto_ack=False
                )
                if method is None:
                    break
                letters.append(self._letter(queue, properties, body))
        finally:
            # Closing the channel hands every message it got back to the queue, untouched.
            if channel.is_open:
                channel.close()
        return letters

    def _letter(self, queue: str, properties: BasicProperties, body: bytes) -> DeadLetter:
        headers: dict[str, Any] = properties.headers or {}
        reason = headers.get(REASON_HEADER)
        routing_key = headers.get(ROUTING_KEY_HEADER)
        attempts = headers.get(ATTEMPTS_HEADER)
        failed_at = headers.get(FAILED_AT_HEADER)
        deaths = headers.get("x-death") or []
        if deaths and isinstance(deaths[0], dict):
            # Set aside by the broker itself: its record says why and where the message came from.
            death = deaths[0]
            if reason is None:
                reason = f"broker: {death.get('reason', 'unknown')} (queue {death.get('queue')})"
            if routing_key is None and death.get("routing-keys"):
                routing_key = death["routing-keys"][0]
            if attempts is None and death.get("reason") == "delivery_limit":
                attempts = self._topology.max_deliveries
            if failed_at is None:
                failed_at = death.get("time")
        return DeadLetter(
            letter_id=properties.message_id or "",
            queue=queue,
            routing_key=str(routing_key or ""),
            body=body,
            reason=str(reason or "unknown"),
            attempts=attempts if isinstance(attempts, int) else None,
            last_failed_at=failed_at if isinstance(failed_at, datetime) else None,
        )
