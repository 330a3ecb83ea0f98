"""The instrumentation packages: the HTTP span, statement and command spans, redaction, off."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from adapters.bootstrap import Services, bootstrap
from adapters.tracing.instrumentation import LibraryInstrumentation, redacted_query
from adapters.tracing.opentelemetry import OpenTelemetryTracer
from application.tracing import current_traceparent
from domain.events import Event
from entrypoints.server.app import create_app
from tests.support.processes import free_port, wait_until
from tests.support.span_files import RecordedSpan, as_recorded
from tests.support.traces import recording_tracer
from tests.unit.test_architecture import run_python

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = PARENT.split("-")[1]
USER = 77


@pytest.fixture
def recorded() -> Iterator[tuple[InMemorySpanExporter, OpenTelemetryTracer]]:
    with recording_tracer() as recording:
        yield recording


def traced_services(tracer: OpenTelemetryTracer, **environ: str) -> Services:
    return bootstrap(
        {"DATABASE_URL": "memory://", "SECRET_KEY": secrets.token_urlsafe(32), **environ},
        overrides={"tracer": tracer},
    )


def finished(exporter: InMemorySpanExporter) -> list[RecordedSpan]:
    return [as_recorded(span) for span in exporter.get_finished_spans()]


def test_the_http_span_continues_the_callers_trace_under_the_routes_name(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer],
) -> None:
    exporter, tracer = recorded
    services = traced_services(tracer)
    heard: list[Event] = []
    services.broker.subscribe_status(heard.append)
    token = services.token_issuer.issue(USER, 3600)
    with TestClient(create_app(services)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        created = client.post(
            "/api/workspaces", json={"name": "w"}, headers={"traceparent": PARENT}
        )
        assert created.status_code == 202, created.text
        assert client.get(f"/api/workspaces/{created.json()['id']}").status_code == 200
    services.close()
    spans = {span.name: span for span in finished(exporter)}
    post = spans["POST /api/workspaces"]
    assert (post.kind, post.trace_id, post.parent_id) == ("SERVER", TRACE_ID, PARENT.split("-")[2])
    assert post.attributes["http.route"] == "/api/workspaces"
    get = spans["GET /api/workspaces/{workspace_id}"]
    assert get.attributes["http.route"] == "/api/workspaces/{workspace_id}"
    assert get.trace_id != TRACE_ID, "a request without traceparent starts a trace of its own"
    # The event the request caused is in the server span's trace, as its child.
    wait_until(lambda: heard, timeout=5, what="the status event")
    assert heard[0].traceparent is not None
    assert heard[0].traceparent.split("-")[1] == TRACE_ID


def test_no_token_reaches_a_span(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter, tracer = recorded
    services = traced_services(tracer)
    secret = "s3cr3t-" + secrets.token_hex(8)
    # Even an operator who asks for every request header gets no credential in a span.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    with TestClient(create_app(services)) as client:
        client.get("/api/workspaces", headers={"Authorization": f"Bearer {secret}"})
        # Refused before a stream starts: the request is whole, with its URL, in the span.
        for query in (f"token={secret}", f"scope=workspaces&%74oken={secret}"):
            assert client.get(f"/events?{query}").status_code == 401
        assert client.get(f"/api/workspaces?access_token={secret}").status_code == 401
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/ws?token={secret}"):
            pass
    services.close()
    spans = finished(exporter)
    assert {span.name for span in spans} == {"GET /events", "GET /api/workspaces"}
    for span in spans:
        assert secret not in repr(span), span
    shown = [str(value) for span in spans for value in span.attributes.values()]
    assert any("token=REDACTED" in value for value in shown), shown
    assert any("[REDACTED]" in value for value in shown), "the header was captured, redacted"


def test_secret_query_values_are_redacted_and_the_rest_kept() -> None:
    assert redacted_query(b"scope=a&token=abc&tokens=keep") == b"scope=a&token=REDACTED&tokens=keep"
    assert redacted_query(b"%74oken=abc&ACCESS_TOKEN=x") == b"token=REDACTED&ACCESS_TOKEN=REDACTED"
    assert redacted_query(b"scope=workspace%3A3") == b"scope=workspace%3A3"
    assert redacted_query(b"") == b""


def test_statements_are_spans_under_the_step_that_runs_them_and_only_there(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer], tmp_path: Path
) -> None:
    exporter, tracer = recorded
    services = traced_services(tracer, DATABASE_URL=f"sqlite:///{tmp_path / 'status.db'}")
    services.start()
    services.workspaces.create(user_id=USER, name="outside any trace").unwrap()
    assert finished(exporter) == [], "a statement outside a trace opens no trace of its own"
    with tracer.span("step"):
        services.workspaces.create(user_id=USER, name="inside").unwrap()
    services.close()
    spans = finished(exporter)
    (step,) = [span for span in spans if span.name == "step"]
    statements = [span for span in spans if span.kind == "CLIENT"]
    assert statements, [span.name for span in spans]
    assert {span.parent_id for span in statements} == {step.span_id}
    assert any(span.name.startswith("INSERT") for span in statements), statements
    assert all(span.attributes.get("db.system") == "sqlite" for span in statements)


def test_redis_commands_are_spans_inside_a_trace_only(
    recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer],
) -> None:
    exporter, tracer = recorded
    # Nothing listens there: each command fails at once, and its span records the failure.
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    LibraryInstrumentation(tracer).redis(client)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert finished(exporter) == []
    with tracer.span("handle"):
        assert current_traceparent() is not None
        with pytest.raises(redis.ConnectionError):
            client.ping()
    spans = {span.name: span for span in finished(exporter)}
    assert spans["PING"].kind == "CLIENT"
    assert spans["PING"].parent_id == spans["handle"].span_id
    client.close()


def test_tracing_off_instruments_nothing_and_loads_no_opentelemetry(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'off.db'}",
        "SECRET_KEY": secrets.token_urlsafe(32),
    }
    probe = f"""
import sys
from adapters.bootstrap import bootstrap
from entrypoints.server.app import create_app
services = bootstrap({environ!r})
services.start()
create_app(services)
services.workspaces.create(user_id=1, name="w").unwrap()
print(services.http_tracing, sorted(m for m in sys.modules if m.startswith("opentelemetry")))
services.close()
"""
    result = run_python(probe, {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "[]"]


def test_tracing_off_still_passes_the_callers_trace_context_on() -> None:
    services = bootstrap({"DATABASE_URL": "memory://", "SECRET_KEY": secrets.token_urlsafe(32)})
    heard: list[Event] = []
    services.broker.subscribe_status(heard.append)
    token = services.token_issuer.issue(USER, 3600)
    with TestClient(create_app(services)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.post("/api/workspaces", json={"name": "a"}, headers={"traceparent": PARENT})
        client.post("/api/workspaces", json={"name": "b"}, headers={"traceparent": "nonsense"})
    wait_until(lambda: len(heard) == 2, timeout=5, what="the status events")
    services.close()
    assert [event.traceparent for event in heard] == [PARENT, None]
