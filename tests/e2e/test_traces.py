"""One upload, one trace: from the HTTP request through every stage to the frame on the socket.

In one process on the in-memory transport, spans go to the SDK's in-memory exporter; on the
real transports every process (server, stage workers, relay) writes its spans to a file of
its own and the test assembles the trace from them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient
from websockets.sync.client import connect

from adapters.bootstrap import Services, bootstrap
from adapters.container import build_container
from adapters.tracing.opentelemetry import OpenTelemetryTracer
from application.pipeline import plan_for
from domain.entities import RagConfig
from entrypoints.runtime import WORKER_KINDS, start_relay_thread, start_worker_threads
from entrypoints.server.app import create_app
from tests.support.processes import deployment, free_port, wait_until
from tests.support.span_files import EXPORTER, SPAN_DIR, RecordedSpan, as_recorded, read_spans
from tests.support.traces import ancestors, assert_connected, recording_tracer, trace_of

TEXT = b"Traces follow one upload through every stage of its processing. " * 40
USER = 4242
GRAPH_ON = RagConfig(graph_enabled=True)
FULL_PLAN = plan_for(GRAPH_ON)
# A shared machine starts half a dozen interpreters slowly.
STARTUP_SECONDS = 120.0
UPLOAD_SPAN = "POST /api/workspaces/{workspace_id}/documents"


def assert_one_trace(
    spans: list[RecordedSpan], frame: dict[str, Any], *, database: str | None = None
) -> list[RecordedSpan]:
    """The frame's trace holds the upload's HTTP span, a span per step and the frame's send.

    The trace is the one the frame names at its top level (the same as its event's). With a
    ``database``, the statements the steps run are spans of it, under their step.
    """
    traceparent = frame["traceparent"]
    assert traceparent == frame["data"]["traceparent"]
    trace = trace_of(spans, traceparent.split("-")[1])
    (root,) = [s for s in trace if s.parent_id is None]
    assert (root.name, root.kind) == (UPLOAD_SPAN, "SERVER")
    assert root.attributes["http.route"] == UPLOAD_SPAN.split(" ")[1]
    assert_connected(trace, root=root)
    names = [s.name for s in trace]
    for step in FULL_PLAN:
        assert names.count(step) == 1, (step, names)
        (span,) = [s for s in trace if s.name == step]
        assert ancestors(trace, span)[0].startswith("handle document."), ancestors(trace, span)
    sends = [s for s in trace if s.name == "send frame"]
    # The upload's own event, one per step begun, one per stage's end.
    assert len(sends) >= 1 + len(FULL_PLAN) + 3, names
    assert {ancestors(trace, s)[0] for s in sends} >= {root.name, *FULL_PLAN}
    if database is not None:
        statements = [s for s in trace if s.attributes.get("db.system") == database]
        assert statements, names
        under_steps = {step for s in statements for step in ancestors(trace, s)} & set(FULL_PLAN)
        assert under_steps == set(FULL_PLAN), under_steps
        assert root.name in ancestors(trace, statements[0])
    return trace


def wait_ready(client: httpx.Client, workspace_id: int) -> None:
    wait_until(
        lambda: client.get(f"/api/workspaces/{workspace_id}").json()["status"] == "ready",
        timeout=30,
        what="a ready workspace",
    )


def ready_frame(receive: Callable[[], str], document_id: int) -> dict[str, Any]:
    """Frames until the one saying the document is ready; that one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frame: dict[str, Any] = json.loads(receive())
        data = frame.get("data", {})
        if (
            frame.get("type") == "document_status"
            and data.get("document_id") == document_id
            and data.get("status") == "ready"
        ):
            return frame
    raise AssertionError("no frame said the document was ready")


@pytest.fixture
def recorded() -> Iterator[tuple[InMemorySpanExporter, OpenTelemetryTracer]]:
    with recording_tracer() as recording:
        yield recording


@pytest.mark.parametrize("delivery", ["direct", "outbox"])
def test_one_upload_is_one_trace_in_one_process(
    delivery: str, recorded: tuple[InMemorySpanExporter, OpenTelemetryTracer]
) -> None:
    exporter, tracer = recorded
    container, settings = build_container(
        {
            "DATABASE_URL": "memory://",
            "TRANSPORT": "memory",
            "DELIVERY": delivery,
            "SECRET_KEY": secrets.token_urlsafe(32),
        }
    )
    container.tracer.override(tracer)
    container.rag_configs().set_defaults(USER, GRAPH_ON)
    services = Services(container, settings)
    services.start()
    stop = threading.Event()
    threads = start_worker_threads(services, WORKER_KINDS, stop, poll_seconds=0.05)
    if delivery == "outbox":
        threads.append(start_relay_thread(services, stop))
    token = services.token_issuer.issue(USER, 3600)
    try:
        with TestClient(create_app(services)) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            workspace = client.post("/api/workspaces", json={"name": "Traced"}).json()
            wait_until(
                lambda: (
                    client.get(f"/api/workspaces/{workspace['id']}").json()["status"] == "ready"
                ),
                timeout=20,
                what="a ready workspace",
            )
            with client.websocket_connect(f"/ws?token={token}") as socket:
                uploaded = client.post(
                    f"/api/workspaces/{workspace['id']}/documents",
                    files={"file": ("traced.txt", TEXT, "text/plain")},
                )
                assert uploaded.status_code == 202, uploaded.text
                frame = ready_frame(socket.receive_text, uploaded.json()["id"])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        services.close()
    spans = [as_recorded(span) for span in exporter.get_finished_spans()]
    assert_one_trace(spans, frame)


TRANSPORTS = [
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    pytest.param("nats", marks=pytest.mark.nats),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("delivery", ["direct", "outbox"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_one_upload_is_one_trace_across_processes(
    transport: str, delivery: str, tmp_path: Path
) -> None:
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    tracing = {
        "OTEL_TRACES_EXPORTER": EXPORTER,
        SPAN_DIR: str(spans_dir),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with deployment(transport, tmp_path, DELIVERY=delivery) as place:
        place.container.rag_configs().set_defaults(USER, GRAPH_ON)
        port = free_port()
        secret = secrets.token_urlsafe(32)
        environ = {**tracing, "SECRET_KEY": secret}
        server = place.processes.start("serve", "--port", str(port), environ=environ)
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(f"{base}/readyz") or not server.running,
            timeout=STARTUP_SECONDS,
            what="a ready server",
        )
        assert server.running, server.log()
        # A process of its own for every stage, so that the trace crosses each hand-off.
        started = [
            place.processes.start("worker", kind, environ=environ)
            for kind in ("provisioning", "ingestion", "embeddings", "graph")
        ]
        if delivery == "outbox":
            place.processes.start("relay", environ=environ)
        for process in started:
            wait_until(
                lambda p=process: "worker started" in p.log() or not p.running,  # type: ignore[misc]
                timeout=STARTUP_SECONDS,
                what=f"start of {process.name}",
            )
            assert process.running, process.log()
        token = bootstrap({"SECRET_KEY": secret}).token_issuer.issue(USER, 3600)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            workspace = client.post("/api/workspaces", json={"name": "Traced"}).json()
            wait_until(
                lambda: (
                    client.get(f"/api/workspaces/{workspace['id']}").json()["status"] == "ready"
                ),
                timeout=30,
                what="a ready workspace",
            )
            with connect(f"ws://127.0.0.1:{port}/ws?token={token}", origin=None) as socket:
                uploaded = client.post(
                    f"/api/workspaces/{workspace['id']}/documents",
                    files={"file": ("traced.txt", TEXT, "text/plain")},
                )
                assert uploaded.status_code == 202, uploaded.text
                frame = ready_frame(lambda: str(socket.recv(timeout=60)), uploaded.json()["id"])
        # Every process sends what it still holds when it stops.
        place.processes.stop_all()
    trace = assert_one_trace(read_spans(spans_dir), frame, database="postgresql")
    if transport == "redis":
        # The Redis transport's commands inside the trace: the hand-offs the steps publish.
        commands = [s for s in trace if s.attributes.get("db.system") == "redis"]
        assert any("XADD" in s.name.split() for s in commands), [s.name for s in commands]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
