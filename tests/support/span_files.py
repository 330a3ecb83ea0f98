"""Spans of several processes, gathered for one test: each process writes its own file.

``OTEL_TRACES_EXPORTER=tests.support.span_files:JsonLinesSpanExporter`` with ``SPAN_DIR`` set
makes every process append its finished spans, one JSON object a line, to
``SPAN_DIR/spans-<pid>.jsonl``; ``read_spans`` gathers them all.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import format_span_id, format_trace_id

SPAN_DIR = "SPAN_DIR"
EXPORTER = f"{__name__}:JsonLinesSpanExporter"


@dataclass(frozen=True)
class RecordedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    kind: str = "INTERNAL"
    attributes: dict[str, object] = field(default_factory=dict)


def as_recorded(span: ReadableSpan) -> RecordedSpan:
    context = span.get_span_context()
    assert context is not None
    return RecordedSpan(
        name=span.name,
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        parent_id=None if span.parent is None else format_span_id(span.parent.span_id),
        service=str(span.resource.attributes.get("service.name", "")),
        kind=span.kind.name,
        attributes={
            name: value if isinstance(value, str | int | float | bool) else str(value)
            for name, value in (span.attributes or {}).items()
        },
    )


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span to this process's file in ``SPAN_DIR``."""

    def __init__(self) -> None:
        self._path = Path(os.environ[SPAN_DIR]) / f"spans-{os.getpid()}.jsonl"
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(as_recorded(span).__dict__) + "\n" for span in spans)
        with self._lock, self._path.open("a", encoding="utf-8") as file:
            file.write(lines)
        return SpanExportResult.SUCCESS


def read_spans(directory: Path) -> list[RecordedSpan]:
    return [
        RecordedSpan(**json.loads(line))
        for path in sorted(directory.glob("spans-*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line
    ]
