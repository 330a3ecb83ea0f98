"""Queue backlogs on RabbitMQ: the ready-message count of each work queue's quorum queue.

AMQP tells a queue's ready messages (a passive ``queue.declare``) but neither its unacknowledged
ones nor the age of its head. Reading the head would take a delivery (``basic.get``), and a
quorum queue counts each return of it against its delivery limit, so an operator's glance would
spend a request's attempts and in the end dead-letter it. The age is therefore ``None`` here:
the management plugin's HTTP API tells it, where an installation enables that plugin.
"""

from __future__ import annotations

from pika.exceptions import ChannelClosedByBroker

from adapters.backoff import Backoff, retry_once
from adapters.messaging import connection_name
from adapters.rabbitmq.connection import LINK_ERRORS, RabbitMQConnection, connection_parameters
from adapters.rabbitmq.topology import RabbitMQTopology
from domain.ports import Backlog, QueueBacklogs

NOT_FOUND = 404


class RabbitMQQueueBacklogs(QueueBacklogs):
    """Declares each queue passively on a connection of its own; nothing is consumed."""

    def __init__(self, url: str, topology: RabbitMQTopology) -> None:
        self._topology = topology
        self._connection = RabbitMQConnection(
            connection_parameters(url, connection_name("backlog", topology.exchange))
        )
        self._backoff = Backoff()

    def of(self, queue: str) -> Backlog:
        with self._connection.lock:
            waiting = retry_once(
                lambda: self._ready(queue),
                transient=LINK_ERRORS,
                backoff=self._backoff,
                on_transient=lambda _error, _attempt: self._connection.drop(),
            )
        return Backlog(queue=queue, waiting=waiting, oldest_age_seconds=None)

    def close(self) -> None:
        self._connection.close()

    def _ready(self, queue: str) -> int:
        channel = self._connection.get().channel()
        try:
            declared = channel.queue_declare(self._topology.queue(queue), passive=True)
        except ChannelClosedByBroker as exc:
            if exc.reply_code != NOT_FOUND:
                raise
            # Not declared yet: whatever was published for it found no queue to wait in.
            return 0
        if channel.is_open:
            channel.close()
        return int(declared.method.message_count)
