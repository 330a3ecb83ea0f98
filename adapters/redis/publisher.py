"""Publishing to Redis: work requests are added to their stream, status events published."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError

from adapters.backoff import Backoff, retry_once
from adapters.messaging import PLAIN, EventCodec
from adapters.redis.connection import LINK_ERRORS, RedisConnection
from adapters.redis.topology import RedisTopology
from domain.errors import PublishFailed
from domain.events import DeliveryKind, Event
from domain.ports import MessagePublisher


class RedisPublisher(MessagePublisher):
    """Adds work requests to their stream and publishes status events on the channel.

    A lost link is retried once on a fresh connection (the pool drops the broken one); a
    publish Redis did not take raises ``PublishFailed``.
    """

    def __init__(
        self, connection: RedisConnection, topology: RedisTopology, *, codec: EventCodec = PLAIN
    ) -> None:
        self._codec = codec
        self._client = connection.client
        self._topology = topology
        self._backoff = Backoff()

    def publish(self, event: Event) -> None:
        self._send([event], f"redis did not take {event.routing_key}")

    def publish_many(self, events: Sequence[Event]) -> None:
        """One round trip, in order; after a lost link the whole batch is sent once more (some
        may then be there twice: at least once)."""
        if events:
            self._send(events, f"redis did not take a batch of {len(events)} messages")

    def _send(self, events: Sequence[Event], failure: str) -> None:
        messages = [(event.routing_key, event.kind, self._codec.encode(event)) for event in events]
        client = self._client

        def send() -> None:
            if len(messages) == 1:
                # One command needs no pipeline: building and resetting one costs more CPU
                # than the command itself, and every direct status change sends just one.
                self._command(client, *messages[0])
                return
            # No MULTI: order within the batch is kept by the one connection, and atomicity
            # is not needed when a failure re-sends the whole batch anyway.
            pipeline = client.pipeline(transaction=False)
            try:
                for message in messages:
                    self._command(pipeline, *message)
                pipeline.execute(raise_on_error=True)
            finally:
                pipeline.reset()

        try:
            retry_once(send, transient=LINK_ERRORS, backoff=self._backoff)
        except (RedisError, OSError) as exc:
            raise PublishFailed(f"{failure}: {exc}") from exc

    def _command(self, target: Redis, routing_key: str, kind: DeliveryKind, body: bytes) -> None:
        """Send one message on ``target``: the client itself, or a pipeline that queues it."""
        if kind is DeliveryKind.WORK:
            target.xadd(self._topology.work_stream(routing_key), {"body": body})
        else:
            target.publish(self._topology.status_channel, body)
