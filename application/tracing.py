"""Trace context as a plain value, and the port that opens spans around units of work.

The core never sees a tracing library: the context of the work under way is a W3C
``traceparent`` header value (a string) held in a context variable. An entrypoint sets it
(from the HTTP request, from a work request), the use cases stamp it on every event they
build, and a ``Tracer`` adapter turns ``span`` blocks into real spans — or, by default,
does nothing but carry the value along.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar

from domain.events import Event

_current: ContextVar[str | None] = ContextVar("traceparent", default=None)

Attributes = Mapping[str, str | int | float | bool]


def current_traceparent() -> str | None:
    """The ``traceparent`` of the work under way, if it is part of a trace."""
    return _current.get()


@contextlib.contextmanager
def carrying(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` the current trace context for the block."""
    token = _current.set(traceparent)
    try:
        yield
    finally:
        _current.reset(token)


class Tracer(ABC):
    """Opens a span around a block, as a child of a given or the current trace context."""

    @abstractmethod
    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        server: bool = False,
        attributes: Attributes | None = None,
    ) -> AbstractContextManager[None]:
        """A span named ``name`` for the block; inside it ``current_traceparent`` is its own.

        ``parent`` (a ``traceparent`` value) continues a trace begun elsewhere; without it
        the span is a child of the current context. ``server`` marks the span that handles
        an incoming request.
        """


class NoTracer(Tracer):
    """Records nothing, but passes a continued trace context on unchanged."""

    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        server: bool = False,
        attributes: Attributes | None = None,
    ) -> AbstractContextManager[None]:
        if parent is None:
            return contextlib.nullcontext()
        return carrying(parent)


def continuing(handler: Callable[[Event], None], tracer: Tracer) -> Callable[[Event], None]:
    """``handler`` run in a span that continues the trace its work request carries."""

    def handle(event: Event) -> None:
        with tracer.span(
            f"handle {event.routing_key}",
            parent=event.traceparent,
            attributes={"event_id": event.event_id},
        ):
            handler(event)

    return handle
