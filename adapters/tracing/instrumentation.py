"""The OpenTelemetry instrumentation packages, on the engines, clients and app we build.

Loaded only when tracing is on (the composition root imports this module then, and only
then). Three instrumentations fit:

- ``opentelemetry-instrumentation-asgi`` opens the HTTP server span (continuing the caller's
  ``traceparent``), named after the Starlette route that matches (``POST
  /api/workspaces/{workspace_id}/documents``), with the request's attributes. Query values
  that are secrets (``token``, ``access_token``) are redacted before the instrumentation
  sees the request. WebSocket connections are not traced as spans: a connection lives for
  hours, and each frame it sends has a ``send frame`` span of its own trace.
- ``opentelemetry-instrumentation-sqlalchemy`` on each engine: a span per statement.
- ``opentelemetry-instrumentation-redis`` on the Redis transport's client: a span per command.

Statement and command spans are kept only inside a trace (under a step, a handler or an HTTP
span): the polling loops of the workers and the relay would otherwise start a trace of their
own every few milliseconds. pika's instrumentation is not used: see docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import redis
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_version
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
    get_custom_headers,
)
from opentelemetry.util.types import Attributes
from sqlalchemy import Engine
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.tracing.opentelemetry import OpenTelemetryTracer, traceparent_of_current_span
from application.tracing import carrying

# Query parameters whose values are credentials: the token of ``/ws`` and ``/events``.
SECRET_QUERY_PARAMETERS = frozenset({"token", "access_token"})
REDACTED = "REDACTED"
# Headers that carry credentials, shown as ``[REDACTED]`` even when headers are captured.
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
_NO_METRICS = NoOpMeterProvider()


def redacted_query(query: bytes) -> bytes:
    """``query`` with the value of every secret parameter replaced by ``REDACTED``.

    Names are compared as the server reads them (percent-decoded, as Starlette parses the
    query), so ``%74oken=…`` is redacted too.
    """
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if not any(name.lower() in SECRET_QUERY_PARAMETERS for name, _ in pairs):
        return query
    shown = [
        (name, REDACTED if name.lower() in SECRET_QUERY_PARAMETERS else value)
        for name, value in pairs
    ]
    return urlencode(shown).encode("latin-1", errors="replace")


class LibraryInstrumentation:
    """Instruments what the composition root builds, on the spans of one tracer."""

    def __init__(self, tracer: OpenTelemetryTracer) -> None:
        self._provider = tracer.provider
        self._within_traces = _WithinTraces(tracer.provider)

    def engine(self, engine: Engine) -> None:
        """A span per statement ``engine`` runs inside a trace."""
        # ``SQLAlchemyInstrumentor().instrument(engine=…)`` would also patch ``create_engine``
        # for the whole process and work once per process; its ``EngineTracer`` instruments
        # exactly one engine, with event listeners that go when the engine goes.
        tracer = self._within_traces.get_tracer(
            "opentelemetry.instrumentation.sqlalchemy", sqlalchemy_version
        )
        usage = _NO_METRICS.get_meter("insighthub").create_up_down_counter("unused")
        EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]

    def redis(self, client: redis.Redis) -> None:
        """A span per command ``client`` sends inside a trace."""
        RedisInstrumentor.instrument_client(client, tracer_provider=self._within_traces)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with a server span around every HTTP request."""
        return TracedHttp(app, self._provider)


class TracedHttp:
    """The ASGI instrumentation around HTTP requests; other scopes go straight to the app.

    The instrumentation is handed a copy of the request's scope with its secrets redacted, so
    no attribute it records, now or in a later version, can hold a token; the app gets the
    request as it came. Inside the server span the span's ``traceparent`` is the current trace
    context of the core, so the events the request causes carry it.
    """

    def __init__(self, app: ASGIApp, provider: trace.TracerProvider) -> None:
        self._app = app
        self._instrumented = OpenTelemetryMiddleware(
            _Continuing(app),
            default_span_details=route_span_details,
            tracer_provider=provider,
            meter_provider=_NO_METRICS,
            # A span per message sent would be one per chunk of a streamed response.
            exclude_spans=["receive", "send"],
            # Headers are recorded only if an operator names them; credentials never are.
            http_capture_headers_sanitize_fields=[
                *SECRET_HEADERS,
                *get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS),
            ],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        shown = dict(scope)
        shown["query_string"] = redacted_query(scope.get("query_string", b""))
        shown[_REQUEST] = scope
        await self._instrumented(shown, receive, send)


# Where the scope the instrumentation is shown keeps the request's own.
_REQUEST = "insighthub.request_scope"


class _Continuing:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with carrying(traceparent_of_current_span()):
            await self._app(scope[_REQUEST], receive, send)


def route_span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``<method> <route>`` and the ``http.route``, from the Starlette route that matches."""
    method = str(scope.get("method", "HTTP"))
    route = _matching_route(getattr(scope.get("app"), "routes", ()), scope)
    if route is None:
        return method, {}
    return f"{method} {route}", {"http.route": route}


def _matching_route(routes: Sequence[BaseRoute], scope: Mapping[str, Any]) -> str | None:
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        path = getattr(route, "path", None)
        if match is Match.FULL and isinstance(path, str):
            return path
        if match is Match.PARTIAL and partial is None and isinstance(path, str):
            partial = path
    return partial


class _WithinTraces(trace.TracerProvider):
    """Tracers of ``provider`` that open spans only as children of a span of a trace."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> trace.Tracer:
        return _ChildSpansOnly(
            self._provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        )


def _in_a_trace(context: Context | None) -> bool:
    return trace.get_current_span(context).get_span_context().is_valid


class _ChildSpansOnly(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if not _in_a_trace(context):
            return trace.INVALID_SPAN
        return self._tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Any:
        if not _in_a_trace(context):
            return trace.use_span(trace.INVALID_SPAN, end_on_exit=False)
        return self._tracer.start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )
