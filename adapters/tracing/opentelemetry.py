"""``Tracer`` on the OpenTelemetry SDK, with exporters chosen by the ``OTEL_*`` variables."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from application.tracing import Attributes, Tracer, carrying, current_traceparent

_PROPAGATOR = TraceContextTextMapPropagator()
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"


class OpenTelemetryTracer(Tracer):
    """Spans on a ``TracerProvider``; the trace context they carry is the W3C header value."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("insighthub")

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        server: bool = False,
        attributes: Attributes | None = None,
    ) -> Iterator[None]:
        traceparent = parent or current_traceparent()
        # An explicit context, never the ambient one: the plain value is the one truth.
        context = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else Context()
        kind = SpanKind.SERVER if server else SpanKind.INTERNAL
        with (
            self._tracer.start_as_current_span(
                name, context=context, kind=kind, attributes=dict(attributes or {})
            ),
            carrying(traceparent_of_current_span()),
        ):
            yield

    def close(self) -> None:
        """Send what is still buffered, then stop the exporters."""
        self.provider.shutdown()


def traceparent_of_current_span() -> str | None:
    """The W3C ``traceparent`` of the span current in OpenTelemetry's context, if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def exporter_named(name: str, *, endpoint: str) -> SpanExporter:
    """The exporter ``OTEL_TRACES_EXPORTER`` names: ``otlp``, ``console`` or ``module:Class``."""
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint)
    if name == "console":
        return ConsoleSpanExporter()
    module, _, attribute = name.partition(":")
    exporter: SpanExporter = getattr(importlib.import_module(module), attribute)()
    return exporter


def traces_endpoint(base: str | None, traces: str | None) -> str:
    """Where OTLP over HTTP sends spans: the traces endpoint, or ``/v1/traces`` of the base."""
    if traces:
        return traces
    return (base or DEFAULT_OTLP_ENDPOINT).rstrip("/") + "/v1/traces"


def opentelemetry_tracer(
    exporters: Sequence[str], *, service_name: str, endpoint: str
) -> OpenTelemetryTracer:
    """A tracer that batches its spans to each of ``exporters``."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter_named(name, endpoint=endpoint)))
    return OpenTelemetryTracer(provider)
