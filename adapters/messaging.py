"""What every transport does alike: settings checks, names, and handing status events over.

Each messaging package (``adapters.memory``, ``adapters.rabbitmq``, ``adapters.nats``,
``adapters.redis``) has the same rooms; the policy they share lives here and in
``adapters.backoff``, so that no transport decides it its own way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from domain.errors import MalformedMessage
from domain.events import Event, StatusEvent, decode, encode, entity_key
from domain.ports.messaging import StatusListener
from domain.signing import EventSigner, UntrustedMessage, VersionGuard

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)

# The word each transport names its places with: work, dead letters, status broadcasts.
WORK = "work"
DEAD = "dead"
STATUS = "status"


def check_max_deliveries(max_deliveries: int) -> int:
    if max_deliveries < 1:
        raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
    return max_deliveries


def check_positive(name: str, seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, got {seconds}")
    return seconds


def exhausted(reason: str, attempt: int) -> str:
    """The dead-letter reason of work that failed on its last allowed delivery."""
    return f"{reason} (after {attempt} deliveries)"


def connection_name(role: str, place: str) -> str:
    """How a connection introduces itself to the server (shown in its management tools)."""
    return f"insighthub {role} ({place})"


def subscription_thread_name(transport: str, place: str) -> str:
    """The name of the thread that hands a status subscription's events to its listener."""
    return f"{transport}-{STATUS}-{place}"


# Which kind of message an ``EventCodec`` refused, as told to its ``on_rejected``.
REJECTED_STATUS = "status"
REJECTED_WORK = "work"

RejectionListener = Callable[[str, str], None]


class EventCodec:
    """Turns events into bodies and back, for every transport alike.

    With a ``signer`` every body published is signed and every body received must carry a
    signature of an accepted key; with a ``guard`` status events of implausible versions are
    refused. Each refusal raises ``UntrustedMessage`` (a ``MalformedMessage``, so work queues
    dead-letter it with the reason) after telling ``on_rejected`` its kind and reason. Without
    either, bodies are exactly ``domain.events.encode``'s.
    """

    def __init__(
        self,
        signer: EventSigner | None = None,
        guard: VersionGuard | None = None,
        on_rejected: RejectionListener | None = None,
    ) -> None:
        self._signer = signer
        self._guard = guard
        self._guard_lock = threading.Lock()
        self._on_rejected = on_rejected

    def encode(self, event: Event) -> bytes:
        body = encode(event)
        return body if self._signer is None else self._signer.sign(body)

    def decode(self, body: bytes | str) -> Event:
        """The event a work request's ``body`` holds; ``MalformedMessage`` for any other body."""
        return self._decode(body, REJECTED_WORK)

    def decode_status(self, body: bytes | str) -> Event:
        """Like ``decode``, and a status event's version must be plausible too."""
        event = self._decode(body, REJECTED_STATUS)
        if self._guard is not None and isinstance(event, StatusEvent):
            try:
                with self._guard_lock:
                    self._guard.check(entity_key(event), event.version)
            except UntrustedMessage as exc:
                self._rejected(REJECTED_STATUS, exc)
                raise
        return event

    def _decode(self, body: bytes | str, kind: str) -> Event:
        if self._signer is not None:
            try:
                body = self._signer.verify(body)
            except UntrustedMessage as exc:
                self._rejected(kind, exc)
                raise
        return decode(body)

    def _rejected(self, kind: str, exc: UntrustedMessage) -> None:
        listener = self._on_rejected
        notify(None if listener is None else lambda: listener(kind, exc.reason))


PLAIN = EventCodec()


def deliver_status(body: bytes | str, on_event: StatusListener, codec: EventCodec = PLAIN) -> None:
    """Decode a status broadcast's body and hand the event to ``on_event``.

    A malformed or untrusted body, or a work request on the broadcast, is dropped and logged;
    the listener's own failure is logged. Neither may end the subscription.
    """
    try:
        event = codec.decode_status(body)
    except MalformedMessage as exc:
        log.warning("dropped a malformed status message: %s", exc)
        return
    if not isinstance(event, StatusEvent):
        log.warning("dropped a %s event sent as a status event", event.routing_key)
        return
    notify(lambda: on_event(event), "status listener failed")


def notify(
    callback: Callable[[], None] | None, failure: str = "status resync listener failed"
) -> None:
    """Call a listener's ``callback``, logging (not raising) its failure."""
    if callback is None:
        return
    try:
        callback()
    except Exception:  # one listener's bug must not end the subscription
        log.exception(failure)


class Opened:
    """What a broker opened (work queues, subscriptions, publishers), closed along with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._things: list[Closable] = []

    def track(self, thing: C) -> C:
        with self._lock:
            self._things.append(thing)
        return thing

    def forget(self, thing: Closable) -> None:
        """``thing`` closed on its own: the broker need not close it again."""
        with self._lock:
            if thing in self._things:
                self._things.remove(thing)

    def close_all(self) -> None:
        """Close everything tracked, in order; one failure does not keep the rest open."""
        with self._lock:
            things, self._things = self._things, []
        for thing in things:
            try:
                thing.close()
            except Exception:  # closing the rest matters more than one failure
                log.exception("closing a %s failed", type(thing).__name__)
