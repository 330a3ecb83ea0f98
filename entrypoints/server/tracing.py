"""The trace context of HTTP requests when this server records no spans.

With tracing on, the OpenTelemetry ASGI instrumentation (wired by the composition root,
``Services.http_tracing``) opens the server span. With it off, a request that arrives with a
``traceparent`` header still passes it on: the work and the events it causes carry the
caller's trace context unchanged, so a caller that traces can follow them.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from application.tracing import carrying
from domain.events import is_traceparent


class CarriedTraceContext:
    """ASGI middleware: the caller's well-formed ``traceparent`` is current while it runs."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # The app's own awaitable, not one awaiting it: a WebSocket lives for hours, and
            # a frame of this middleware would live as long, 10,000 times over.
            return self._app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = dict(scope.get("headers") or ()).get(b"traceparent", b"").decode("latin-1")
        with carrying(incoming if is_traceparent(incoming) else None):
            await self._app(scope, receive, send)
