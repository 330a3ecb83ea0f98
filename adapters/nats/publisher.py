"""Publishing on NATS: work requests to JetStream (confirmed), status events to core NATS
subjects (flushed, so that the server has fanned them out before a publish returns)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from typing import Any

from adapters.messaging import PLAIN, EventCodec
from adapters.nats.connection import NatsConnection, redact
from adapters.nats.dead_letters import MESSAGE_ID_HEADER
from adapters.nats.topology import NatsTopology
from domain.errors import PublishFailed
from domain.events import DeliveryKind, Event
from domain.ports import MessagePublisher


class NatsPublisher(MessagePublisher):
    """Work requests go to JetStream (confirmed); status events to core NATS (flushed)."""

    def __init__(
        self,
        connection: NatsConnection,
        topology: NatsTopology,
        *,
        api_timeout: float,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._codec = codec
        self._connection = connection
        self._topology = topology
        self._api_timeout = api_timeout

    def publish(self, event: Event) -> None:
        body = self._codec.encode(event)
        what = f"a {event.routing_key} message"
        if event.kind is DeliveryKind.STATUS:
            subject = self._topology.status_subject(event.routing_key)
            self._publish(self._publish_status(subject, body), what)
        else:
            subject = self._topology.work_subject(event.routing_key)
            self._publish(self._publish_work(subject, body, event.event_id), what)

    def publish_many(self, events: Sequence[Event]) -> None:
        if not events:
            return
        messages = [
            (
                event.kind,
                self._topology.status_subject(event.routing_key)
                if event.kind is DeliveryKind.STATUS
                else self._topology.work_subject(event.routing_key),
                self._codec.encode(event),
                event.event_id,
            )
            for event in events
        ]
        self._publish(
            self._publish_batch(messages),
            f"a batch of {len(messages)} messages",
            # One flush and one wait for the acks, each bounded by the API timeout.
            timeout=2 * self._api_timeout + 1,
        )

    def _publish(
        self, step: Coroutine[Any, Any, None], what: str, *, timeout: float | None = None
    ) -> None:
        if self._connection.closed:
            step.close()
            raise PublishFailed("the NATS broker is closed")
        try:
            self._connection.call(step, timeout or self._api_timeout + 1)
        except PublishFailed:
            raise
        except Exception as exc:
            raise PublishFailed(
                f"NATS did not confirm {what}: {exc or type(exc).__name__}"
            ) from exc

    async def _publish_batch(
        self, messages: Sequence[tuple[DeliveryKind, str, bytes, str]]
    ) -> None:
        """Send every message in order, then wait once: for all JetStream acks and one flush."""
        self._require_connection()
        client = self._connection.client
        jetstream = self._connection.jetstream
        acks: list[asyncio.Future[Any]] = []
        status_sent = False
        try:
            for kind, subject, body, message_id in messages:
                if kind is DeliveryKind.STATUS:
                    await client.publish(subject, body)
                    status_sent = True
                else:
                    acks.append(
                        await jetstream.publish_async(
                            subject,
                            body,
                            wait_stall=self._api_timeout,
                            stream=self._topology.work_stream,
                            headers={MESSAGE_ID_HEADER: message_id},
                        )
                    )
            if status_sent:
                await client.flush(timeout=math.ceil(self._api_timeout))
            # Any error or a missing ack fails the whole batch: the caller sends it again.
            await asyncio.wait_for(asyncio.gather(*acks), self._api_timeout)
        finally:
            for ack in acks:
                ack.cancel()

    async def _publish_work(self, subject: str, body: bytes, message_id: str) -> None:
        self._require_connection()
        # JetStream drops a second message with the same id within its duplicate window, so
        # re-publishing after an unconfirmed attempt cannot queue the same work twice.
        await self._connection.jetstream.publish(
            subject,
            body,
            timeout=self._api_timeout,
            stream=self._topology.work_stream,
            headers={MESSAGE_ID_HEADER: message_id},
        )

    async def _publish_status(self, subject: str, body: bytes) -> None:
        self._require_connection()
        client = self._connection.client
        await client.publish(subject, body)
        # The server answering this ping means it has received (and fanned out) the event.
        await client.flush(timeout=math.ceil(self._api_timeout))

    def _require_connection(self) -> None:
        # nats-py would buffer a publish while reconnecting and send it later; a caller must
        # learn now that the broker has not taken the event.
        if not self._connection.connected:
            raise PublishFailed(f"not connected to NATS at {redact(self._connection.url)}")
