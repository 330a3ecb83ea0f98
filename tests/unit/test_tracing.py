"""Trace context as a plain value: on events, through the tracer port, into the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.bootstrap import bootstrap
from adapters.settings import ConfigError, Settings
from adapters.tracing.opentelemetry import OpenTelemetryTracer, traces_endpoint
from application.tracing import NoTracer, carrying, continuing, current_traceparent
from domain.events import DocumentUploaded, Event, WorkspaceCreated, decode, encode
from entrypoints.logs import JsonFormatter
from tests.support.processes import wait_until
from tests.support.traces import recording_tracer

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def recorded() -> Iterator[tuple[InMemorySpanExporter, OpenTelemetryTracer]]:
    with recording_tracer() as recording:
        yield recording


def work(traceparent: str | None = None) -> DocumentUploaded:
    return DocumentUploaded(
        document_id=1, user_id=2, workspace_id=3, file_path="f", version=1, traceparent=traceparent
    )


def test_an_event_carries_its_trace_context_over_the_wire() -> None:
    assert decode(encode(work(PARENT))).traceparent == PARENT


def test_an_event_from_before_trace_context_decodes_without_one() -> None:
    envelope = json.loads(encode(work(PARENT)))
    del envelope["message"]["traceparent"]
    assert decode(json.dumps(envelope)).traceparent is None


@pytest.mark.parametrize("bad", ["", "nonsense", PARENT.upper(), PARENT + "-00", "00-" + "0" * 50])
def test_a_malformed_trace_context_is_dropped_and_the_event_kept(bad: str) -> None:
    envelope = json.loads(encode(work(PARENT)))
    envelope["message"]["traceparent"] = bad
    event = decode(json.dumps(envelope))
    assert event.traceparent is None
    assert isinstance(event, DocumentUploaded)
    assert event.document_id == 1


def test_the_no_tracer_passes_a_continued_context_on_and_opens_nothing_else() -> None:
    tracer = NoTracer()
    with tracer.span("step"):
        assert current_traceparent() is None
    with tracer.span("step", parent=PARENT):
        assert current_traceparent() == PARENT
    assert current_traceparent() is None


def test_a_span_continues_its_parent_and_is_current_inside(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer],
) -> None:
    exporter, tracer = recorded
    with tracer.span("outer", parent=PARENT, server=True):
        outer = current_traceparent()
        with tracer.span("inner"):
            inner = current_traceparent()
    assert outer is not None
    assert inner is not None
    assert outer.split("-")[1] == inner.split("-")[1] == PARENT.split("-")[1]
    finished = {span.name: span for span in exporter.get_finished_spans()}
    assert finished["outer"].parent is not None
    assert f"{finished['outer'].parent.span_id:016x}" == PARENT.split("-")[2]
    assert finished["inner"].parent is not None
    assert finished["inner"].parent.span_id == finished["outer"].context.span_id
    assert current_traceparent() is None


def test_a_handler_continues_the_trace_of_its_work_request(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer],
) -> None:
    exporter, tracer = recorded
    seen: list[str | None] = []
    continuing(lambda event: seen.append(current_traceparent()), tracer)(work(PARENT))
    (span,) = exporter.get_finished_spans()
    assert span.name == "handle document.uploaded"
    assert seen[0] is not None
    assert seen[0].split("-")[1] == PARENT.split("-")[1]


def test_use_cases_stamp_the_current_context_on_what_they_send() -> None:
    services = bootstrap({"DATABASE_URL": "memory://"})
    heard: list[Event] = []
    services.broker.subscribe_status(heard.append)
    queue = services.broker.work_queue("provisioning", ("workspace.created",))
    with carrying(PARENT):
        services.workspaces.create(user_id=1, name="w").unwrap()
    delivery = queue.receive(1.0)
    assert delivery is not None
    assert isinstance(delivery.event, WorkspaceCreated)
    assert delivery.event.traceparent == PARENT
    wait_until(lambda: heard, timeout=5, what="the status event")
    assert [event.traceparent for event in heard] == [PARENT]
    services.close()


def test_tracing_is_off_unless_configured_and_on_with_an_endpoint() -> None:
    assert isinstance(bootstrap({"DATABASE_URL": "memory://"}).tracer, NoTracer)
    assert isinstance(
        bootstrap({"DATABASE_URL": "memory://", "OTEL_TRACES_EXPORTER": "none"}).tracer, NoTracer
    )
    services = bootstrap(
        {"DATABASE_URL": "memory://", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    )
    assert isinstance(services.tracer, OpenTelemetryTracer)
    services.close()


def test_the_otlp_endpoint_is_the_traces_one_or_the_base_one_with_its_path() -> None:
    assert traces_endpoint(None, None) == "http://localhost:4318/v1/traces"
    assert traces_endpoint("http://c:4318/", None) == "http://c:4318/v1/traces"
    assert traces_endpoint("http://c:4318", "http://t:1/x") == "http://t:1/x"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_TRACES_EXPORTER", "not a module:Nope"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
    ],
)
def test_a_bad_tracing_setting_names_its_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_environ({variable: raw})


def test_structured_logs_carry_the_trace_and_span_ids() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with carrying(PARENT):
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == PARENT.split("-")[1]
    assert line["span_id"] == PARENT.split("-")[2]
