"""One upload's trace, assembled from recorded spans, and what it must hold."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.tracing.opentelemetry import OpenTelemetryTracer
from tests.support.span_files import RecordedSpan


@contextlib.contextmanager
def recording_tracer() -> Iterator[tuple[InMemorySpanExporter, OpenTelemetryTracer]]:
    """A tracer whose spans are kept in memory, each as soon as it ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield exporter, OpenTelemetryTracer(provider)
    finally:
        provider.shutdown()


def trace_of(spans: Sequence[RecordedSpan], trace_id: str) -> list[RecordedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def assert_connected(trace: Sequence[RecordedSpan], *, root: RecordedSpan) -> None:
    """Every span of ``trace`` descends from ``root``: no span's parent is missing."""
    by_id = {span.span_id: span for span in trace}
    for span in trace:
        seen = span
        while seen.parent_id is not None:
            assert seen.parent_id in by_id, f"{span.name}: its ancestor {seen.parent_id} is missing"
            seen = by_id[seen.parent_id]
        assert seen == root, f"{span.name} descends from {seen.name}, not {root.name}"


def ancestors(trace: Sequence[RecordedSpan], span: RecordedSpan) -> list[str]:
    """The names of ``span``'s ancestors, nearest first."""
    by_id = {s.span_id: s for s in trace}
    names: list[str] = []
    while span.parent_id is not None:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names
