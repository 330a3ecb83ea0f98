"""The exchanges and queues of one deployment, and how to declare them.

* ``<exchange>``: a durable topic exchange every event is published to;
* ``<exchange>.<name>``: a durable quorum queue per work queue, bound by its routing keys,
  whose broker-side ``x-delivery-limit`` dead-letters work that keeps coming back (also when
  consumers crash without acknowledging);
* ``<exchange>.dlx``: a durable direct exchange for dead letters, routing ``<name>`` to the
  durable quorum queue ``<exchange>.<name>.dead``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import ChannelClosedByBroker

from adapters.messaging import DEAD, check_max_deliveries
from domain.events import WORK_QUEUES

log = logging.getLogger(__name__)

# Every status routing key (see ``domain.events.is_status_routing_key``).
STATUS_BINDING = "*.status.updated"
PRECONDITION_FAILED = 406


@dataclass(frozen=True, slots=True)
class RabbitMQTopology:
    """The names and arguments of one deployment's exchanges and queues."""

    exchange: str
    max_deliveries: int

    def __post_init__(self) -> None:
        if not self.exchange:
            raise ValueError("the exchange name must not be empty")
        check_max_deliveries(self.max_deliveries)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    def queue(self, name: str) -> str:
        return f"{self.exchange}.{name}"

    def dead_queue(self, name: str) -> str:
        return f"{self.exchange}.{name}.{DEAD}"

    def work_queue_arguments(self, name: str) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            # The broker counts returns, not deliveries: N deliveries allow N - 1 returns.
            "x-delivery-limit": self.max_deliveries - 1,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": name,
            # The dead-letter queue confirms what the broker moves there: not fire-and-forget.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def declare_exchanges(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="direct", durable=True)

    def declare_dead_queue(self, connection: BlockingConnection, name: str) -> None:
        channel = connection.channel()
        try:
            channel.exchange_declare(
                self.dead_letter_exchange, exchange_type="direct", durable=True
            )
            _declare_or_accept(
                connection, channel, self.dead_queue(name), {"x-queue-type": "quorum"}
            )
            channel = _open_if_closed(connection, channel)
            channel.queue_bind(self.dead_queue(name), self.dead_letter_exchange, routing_key=name)
        finally:
            _close(channel)

    def declare_work_queue(
        self, connection: BlockingConnection, name: str, routing_keys: Sequence[str]
    ) -> None:
        """Declare the exchanges, the work queue ``name`` with its bindings, and its dead queue."""
        self.declare_dead_queue(connection, name)
        channel = connection.channel()
        try:
            self.declare_exchanges(channel)
            _declare_or_accept(
                connection, channel, self.queue(name), self.work_queue_arguments(name)
            )
            channel = _open_if_closed(connection, channel)
            for key in routing_keys:
                channel.queue_bind(self.queue(name), self.exchange, routing_key=key)
        finally:
            _close(channel)

    def declare_all(self, connection: BlockingConnection) -> None:
        """Declare every work queue of ``WORK_QUEUES``, so that work sent before any worker starts
        is kept."""
        for name, keys in WORK_QUEUES.items():
            self.declare_work_queue(connection, name, keys)


def _declare_or_accept(
    connection: BlockingConnection,
    channel: BlockingChannel,
    queue: str,
    arguments: dict[str, Any],
) -> None:
    """Declare ``queue``; if it exists with other arguments, keep it as it is and say so.

    Queue arguments cannot change after creation; another deployment (say, with another
    ``max_deliveries``) may have created it first, and refusing to run would help nobody.
    """
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
    except ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        log.warning(
            "queue exists with other arguments; using it as it is",
            extra={"queue": queue, "detail": exc.reply_text},
        )
        check = connection.channel()
        try:
            check.queue_declare(queue, passive=True)
        finally:
            _close(check)


def _open_if_closed(connection: BlockingConnection, channel: BlockingChannel) -> BlockingChannel:
    return channel if channel.is_open else connection.channel()


def _close(channel: BlockingChannel) -> None:
    if channel.is_open:
        channel.close()
