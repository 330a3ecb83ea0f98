"""Publishing to RabbitMQ with publisher confirms: a publish returns only once the broker has it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import NackError, UnroutableError
from pika.spec import Basic

from adapters.backoff import Backoff, retry_once
from adapters.messaging import PLAIN, EventCodec, connection_name
from adapters.rabbitmq.connection import LINK_ERRORS, RabbitMQConnection, connection_parameters
from adapters.rabbitmq.dead_letters import PERSISTENT
from adapters.rabbitmq.topology import RabbitMQTopology
from domain.errors import PublishFailed
from domain.events import DeliveryKind, Event
from domain.ports import MessagePublisher

log = logging.getLogger(__name__)

# How long a batch waits for the broker's confirms before it counts as not taken.
BATCH_CONFIRM_SECONDS = 30.0
_BATCH_ERRORS: tuple[type[Exception], ...] = (*LINK_ERRORS, TimeoutError)


class _BatchRefused(Exception):
    """The broker refused (nacked) or returned a message of the batch."""


def select_pipelined_confirms(
    channel: BlockingChannel,
    on_confirm: Callable[[Any], None],
    on_selected: Callable[[Any], None],
) -> None:
    """Put ``channel`` in confirm mode with ``on_confirm`` hearing every ack and nack.

    pika's ``BlockingChannel.confirm_delivery`` (checked against pika 1.4.4) makes each
    ``basic_publish`` wait for its own confirm and offers no callback, and ``BlockingChannel``
    has no public way to pipeline confirms; the underlying asynchronous ``pika.channel.Channel``
    has one, public there (``confirm_delivery(ack_nack_callback, callback)``), reachable only
    through the private ``_impl``. This is the one place the transport touches it.
    ``on_selected`` runs once the broker has answered ``Confirm.Select``, while ``channel``'s
    connection processes its events.
    """
    channel._impl.confirm_delivery(ack_nack_callback=on_confirm, callback=on_selected)


class _PipelinedConfirms:
    """A channel in confirm mode that publishes a whole batch, then waits for its confirms once.

    pika's ``BlockingChannel`` in confirm mode waits for each message's confirm before the
    next publish. This channel is put in confirm mode with a callback of its own
    (``select_pipelined_confirms``), so that a batch is sent in one go and its acks (often one,
    with ``multiple``) are collected afterwards. Not a transaction: RabbitMQ does not report a
    quorum queue's rejections (``x-overflow: reject-publish``) at ``tx.commit``, while a
    confirm-mode nack does report them.
    """

    def __init__(self, connection: BlockingConnection) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self._next_tag = 1
        self._unconfirmed: set[int] = set()
        self._refusals: list[str] = []
        self._selected = False
        self.channel.add_on_return_callback(self._on_return)
        select_pipelined_confirms(self.channel, self._on_confirm, self._on_selected)
        self._wait_until(lambda: self._selected, "confirm mode")

    @property
    def usable(self) -> bool:
        return bool(self.channel.is_open and self.connection.is_open)

    def publish(
        self,
        exchange: str,
        messages: Sequence[tuple[str, bytes, bool, pika.BasicProperties]],
    ) -> None:
        """Publish every ``(routing_key, body, mandatory, properties)``; return once all are
        confirmed, else raise ``_BatchRefused`` (or a link error)."""
        self._refusals.clear()
        for routing_key, body, mandatory, properties in messages:
            # Counted before sending: its confirm may come in while pika flushes the publish.
            self._unconfirmed.add(self._next_tag)
            self._next_tag += 1
            self.channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
        self._wait_until(lambda: not self._unconfirmed, "the confirms of a batch")
        # The broker sends a message's return before its ack, and pika hands returns over
        # only in ``process_data_events``, even when the acks came in during a publish.
        self.connection.process_data_events(time_limit=0)
        if self._refusals:
            raise _BatchRefused("; ".join(sorted(set(self._refusals))))

    def close(self) -> None:
        if self.channel.is_open:
            try:
                self.channel.close()
            except LINK_ERRORS:
                log.debug("closing a batch channel failed", exc_info=True)

    def _wait_until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BATCH_CONFIRM_SECONDS
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.usable:
                raise TimeoutError(f"rabbitmq did not answer with {what} in time")
            self.connection.process_data_events(time_limit=min(remaining, 1.0))

    def _on_selected(self, _frame: Any) -> None:
        self._selected = True
        self._wake()

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if method.multiple:
            settled = {tag for tag in self._unconfirmed if tag <= method.delivery_tag}
        else:
            settled = {method.delivery_tag} & self._unconfirmed
        self._unconfirmed -= settled
        if isinstance(method, Basic.Nack):
            self._refusals.append(f"the broker refused {len(settled)} message(s)")
        if not self._unconfirmed:
            self._wake()

    def _wake(self) -> None:
        # Confirms reach this callback below pika's event dispatch, which would otherwise let
        # ``process_data_events`` sit out its whole time limit.
        self.connection.add_callback_threadsafe(_nothing)

    def _on_return(
        self, _channel: Any, method: Basic.Return, _properties: Any, _body: bytes
    ) -> None:
        self._refusals.append(
            f"no queue is bound to {method.routing_key!r} on exchange {method.exchange!r}"
        )


class RabbitMQPublisher(MessagePublisher):
    """Publishes events to a topic exchange as persistent, confirmed messages; thread-safe.

    On connecting it declares the exchange and every work queue, so work sent before any
    worker has started is kept. A lost connection is reopened (after a short backoff) and the
    publish retried once; a publish the broker did not confirm raises ``PublishFailed``.
    """

    def __init__(
        self,
        rabbitmq_url: str,
        exchange: str,
        *,
        max_deliveries: int = 5,
        codec: EventCodec = PLAIN,
    ) -> None:
        self._codec = codec
        self._topology = RabbitMQTopology(exchange, max_deliveries)
        self._link = RabbitMQConnection(
            connection_parameters(rabbitmq_url, connection_name("publisher", exchange)),
            on_open=self._topology.declare_all,
        )
        self._channel: BlockingChannel | None = None
        self._channel_connection: BlockingConnection | None = None
        self._batches: _PipelinedConfirms | None = None
        self._backoff = Backoff()
        self._closed = False

    @property
    def exchange(self) -> str:
        return self._topology.exchange

    def publish(self, event: Event) -> None:
        self._publish(
            event.routing_key,
            self._codec.encode(event),
            # Work nobody can receive is an error; a status event nobody listens to is not.
            mandatory=event.kind is DeliveryKind.WORK,
            message_id=event.event_id,
        )

    def publish_many(self, events: Sequence[Event]) -> None:
        if not events:
            return
        messages = [
            (
                event.routing_key,
                self._codec.encode(event),
                event.kind is DeliveryKind.WORK,
                _properties(event.routing_key, event.event_id),
            )
            for event in events
        ]
        with self._link.lock:
            if self._closed:
                raise PublishFailed("the publisher is closed")
            try:
                self._retry_once(
                    lambda: self._batch_channel().publish(self.exchange, messages),
                    {"events": len(messages)},
                )
            except _BatchRefused as exc:
                # The rest of the batch may have been taken: the caller sends it all again.
                raise PublishFailed(f"rabbitmq did not take a batch: {exc}") from None
            except _BATCH_ERRORS as exc:
                raise PublishFailed(
                    f"rabbitmq did not confirm a batch of {len(messages)} on "
                    f"{self.exchange!r}: {exc!r}"
                ) from exc

    def close(self) -> None:
        with self._link.lock:
            self._closed = True
            self._drop_channels()

    def _publish(
        self, routing_key: str, body: bytes, *, mandatory: bool, message_id: str | None = None
    ) -> None:
        properties = _properties(routing_key, message_id)

        def publish() -> None:
            channel = self._confirming_channel()
            # Refusals are answers, not link failures: raised as they are, never retried.
            try:
                channel.basic_publish(
                    self.exchange, routing_key, body, properties, mandatory=mandatory
                )
            except UnroutableError:
                raise PublishFailed(
                    f"no queue is bound to {routing_key!r} on exchange {self.exchange!r}"
                ) from None
            except NackError:
                raise PublishFailed(f"the broker refused the message for {routing_key!r}") from None

        with self._link.lock:
            if self._closed:
                raise PublishFailed("the publisher is closed")
            try:
                self._retry_once(publish, {"routing_key": routing_key})
            except LINK_ERRORS as exc:
                raise PublishFailed(
                    f"rabbitmq did not confirm {routing_key!r} on {self.exchange!r}: {exc!r}"
                ) from exc

    def _retry_once(self, publish: Callable[[], None], about: dict[str, object]) -> None:
        """Run ``publish``; after a link failure, on a new connection once more."""

        def on_failure(error: Exception, attempt: int) -> None:
            log.warning(
                "rabbitmq publish failed", extra={**about, "attempt": attempt, "error": repr(error)}
            )
            self._drop_channels()

        retry_once(publish, transient=_BATCH_ERRORS, backoff=self._backoff, on_transient=on_failure)

    def _confirming_channel(self) -> BlockingChannel:
        connection = self._link.get()
        if (
            self._channel is None
            or self._channel_connection is not connection
            or not self._channel.is_open
        ):
            channel = connection.channel()
            channel.confirm_delivery()
            self._channel, self._channel_connection = channel, connection
        return self._channel

    def _batch_channel(self) -> _PipelinedConfirms:
        connection = self._link.get()
        if self._batches is None or self._batches.connection is not connection:
            self._batches = _PipelinedConfirms(connection)
        elif not self._batches.usable:
            self._batches.close()
            self._batches = _PipelinedConfirms(connection)
        return self._batches

    def _drop_channels(self) -> None:
        self._channel = self._channel_connection = self._batches = None
        self._link.drop()


def _nothing() -> None:
    pass


def _properties(routing_key: str, message_id: str | None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=PERSISTENT,
        message_id=message_id,
        type=routing_key,
    )
