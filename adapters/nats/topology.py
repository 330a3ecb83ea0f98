"""Where things live on NATS: subjects, the work and dead-letter streams, durable consumers.

Everything is prefixed by a namespace, so that several deployments (or test runs) share one
server without seeing each other's messages:

* work requests: subject ``<ns>.work.<routing key>``, stored in the stream ``<NS>_WORK``
  (work-queue retention: a message is removed once a consumer acknowledges it);
* each named work queue is a durable pull consumer of ``<NS>_WORK`` named after the queue,
  filtered on its routing key's subject;
* dead letters: subject ``<ns>.dead.<queue>``, stored in the stream ``<NS>_DEAD``;
* status events: core NATS subject ``<ns>.status.<routing key>``, not stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError

from adapters.messaging import DEAD, STATUS, WORK

log = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_ROUTING_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")

STREAM_NAME_IN_USE = 10058
FILTER_NOT_UNIQUE_ON_WORK_QUEUE = 10100
# How long JetStream remembers a Nats-Msg-Id to drop a re-published duplicate.
DUPLICATE_WINDOW_SECONDS = 120.0


def check_routing_key(routing_key: str) -> str:
    if not _ROUTING_KEY.match(routing_key):
        raise ValueError(
            f"routing key {routing_key!r} is not a dot-separated list of words "
            "(letters, digits, '_' or '-')"
        )
    return routing_key


@dataclass(frozen=True)
class NatsTopology:
    """The names of one namespace's subjects, streams and consumers."""

    namespace: str

    def __post_init__(self) -> None:
        if not _NAMESPACE.match(self.namespace):
            raise ValueError(
                f"NATS namespace {self.namespace!r} must be lower-case letters, digits, "
                "'_' or '-', starting with a letter or digit"
            )

    @property
    def work_stream(self) -> str:
        return f"{self.namespace.upper()}_{WORK.upper()}"

    @property
    def dead_stream(self) -> str:
        return f"{self.namespace.upper()}_{DEAD.upper()}"

    @property
    def status_subjects(self) -> str:
        return f"{self.namespace}.{STATUS}.>"

    def work_subject(self, routing_key: str) -> str:
        return f"{self.namespace}.{WORK}.{check_routing_key(routing_key)}"

    def routing_key_of_work(self, subject: str) -> str:
        return subject.removeprefix(f"{self.namespace}.{WORK}.")

    def status_subject(self, routing_key: str) -> str:
        return f"{self.namespace}.{STATUS}.{check_routing_key(routing_key)}"

    def dead_subject(self, queue: str) -> str:
        return f"{self.namespace}.{DEAD}.{check_queue_name(queue)}"

    def max_deliveries_advisory(self, queue: str) -> str:
        """Where JetStream announces a message of ``queue`` that ran out of deliveries."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.work_stream}.{queue}"


def check_queue_name(queue: str) -> str:
    if not _QUEUE_NAME.match(queue):
        raise ValueError(f"queue name {queue!r} must be letters, digits, '_' or '-'")
    return queue


async def declare_streams(js: JetStreamContext, topology: NatsTopology) -> None:
    """Create the work and dead-letter streams unless they exist (idempotent)."""
    streams = (
        (topology.work_stream, WORK, RetentionPolicy.WORK_QUEUE),
        (topology.dead_stream, DEAD, RetentionPolicy.LIMITS),
    )
    for name, place, retention in streams:
        await _declare_stream(
            js,
            StreamConfig(
                name=name,
                subjects=[f"{topology.namespace}.{place}.>"],
                retention=retention,
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            ),
        )


async def _declare_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except APIError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        # An operator may have tuned the stream (limits, replicas): use it as it is.
        log.info("stream %s exists with another configuration; using it as it is", config.name)


async def declare_consumer(
    js: JetStreamContext,
    topology: NatsTopology,
    queue: str,
    routing_keys: Sequence[str],
    *,
    ack_wait: float,
    max_deliveries: int,
) -> None:
    """Create (or update) the durable pull consumer behind the work queue ``queue``."""
    check_queue_name(queue)
    if len(routing_keys) != 1:
        # NATS 2.9 gives a consumer one filter subject, and a work-queue stream hands each
        # message to one consumer only: a queue is bound to exactly one routing key.
        raise ValueError(
            f"a NATS work queue is bound to exactly one routing key; "
            f"queue {queue!r} was given {list(routing_keys)!r}"
        )
    subject = topology.work_subject(routing_keys[0])
    try:
        existing = await js.consumer_info(topology.work_stream, queue)
    except NotFoundError:
        pass
    else:
        bound = existing.config.filter_subject
        if bound != subject:
            raise ValueError(
                f"work queue {queue!r} is already bound to {bound!r}, not {subject!r}; "
                f"delete the consumer {queue!r} of stream {topology.work_stream} to rebind it"
            )
    config = ConsumerConfig(
        durable_name=queue,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliveries,
    )
    try:
        # The same call updates ack_wait / max_deliver when the configuration changed.
        await js.add_consumer(topology.work_stream, config)
    except APIError as exc:
        if exc.err_code == FILTER_NOT_UNIQUE_ON_WORK_QUEUE:
            raise ValueError(
                f"routing key {routing_keys[0]!r} is already consumed by another work queue "
                f"of stream {topology.work_stream}; on NATS each routing key feeds one queue"
            ) from exc
        raise
