"""The HTTP span: every request handled in a span that continues the caller's ``traceparent``."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from application.tracing import Tracer


class TracedRequests:
    """ASGI middleware: a server span per HTTP request, its context current while it runs."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self._app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"traceparent")
        method, path = scope["method"], scope["path"]
        with self._tracer.span(
            f"{method} {path}",
            parent=incoming.decode("latin-1") if incoming else None,
            server=True,
            attributes={"http.request.method": method, "url.path": path},
        ):
            await self._app(scope, receive, send)
