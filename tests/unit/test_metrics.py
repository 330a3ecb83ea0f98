"""Metrics through prometheus-client: the worker loop's, the job runner's and the push path's."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from adapters.container import build_container, close_container
from adapters.memory.broker import InMemoryBroker
from adapters.prometheus.metrics import PrometheusMetrics
from application.pipeline import STAGES_BY_NAME
from application.worker import Worker
from domain.events import Event, WorkspaceCreated
from entrypoints.server.metrics import PushPathCollector, ServerMetrics


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, parsed back with prometheus-client's own parser."""
    parsed = text_string_to_metric_families(metrics.exposition().decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parsed
        for sample in family.samples
    }


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def created(n: int) -> WorkspaceCreated:
    return WorkspaceCreated(workspace_id=n, user_id=1, name="w", version=1)


def test_worker_outcomes_are_counted_and_a_spent_retry_is_a_dead_letter() -> None:
    metrics = PrometheusMetrics(max_deliveries=2)
    broker = InMemoryBroker(max_deliveries=2)
    queue = broker.work_queue("provisioning", ["workspace.created"])
    broker.publisher().publish(created(1))
    broker.publisher().publish(created(2))

    def fails_for_the_first(event: Event) -> None:
        if isinstance(event, WorkspaceCreated) and event.workspace_id == 1:
            raise ConnectionError("down")

    worker = Worker(
        queue, {"workspace.created": fails_for_the_first}, retry_backoff=lambda _: 0.0,
        metrics=metrics,
    )  # fmt: skip
    while worker.run_once(timeout=0.1):
        pass
    key = "workspace.created"
    assert value(metrics, "work_deliveries_total", routing_key=key, outcome="acked") == 1
    assert value(metrics, "work_deliveries_total", routing_key=key, outcome="retried") == 1
    assert value(metrics, "work_deliveries_total", routing_key=key, outcome="dead_lettered") == 1
    assert value(metrics, "work_dead_letters_total", routing_key=key) == 1
    assert len(broker.dead_letters().of("provisioning")) == 1
    assert value(metrics, "work_handling_duration_seconds_count", routing_key=key) == 3


def test_a_delivery_without_a_handler_is_a_dead_letter() -> None:
    metrics = PrometheusMetrics(max_deliveries=5)
    broker = InMemoryBroker()
    queue = broker.work_queue("provisioning", ["workspace.created"])
    broker.publisher().publish(created(3))
    Worker(queue, {}, metrics=metrics).run_once(timeout=0.1)
    assert value(metrics, "work_dead_letters_total", routing_key="workspace.created") == 1


def test_every_step_of_a_document_job_moves_its_histogram() -> None:
    container, _ = build_container({"DATABASE_URL": "memory://"})
    try:
        metrics = container.metrics()
        assert isinstance(metrics, PrometheusMetrics)
        workspace = container.workspaces().create(user_id=1, name="w").unwrap()
        container.provision_workspace()(
            WorkspaceCreated(
                workspace_id=workspace.id, user_id=1, name="w", version=workspace.version
            )
        )
        document = (
            container.documents()
            .upload(
                user_id=1,
                workspace_id=workspace.id,
                filename="a.txt",
                content=[b"words to parse and chunk " * 50],
            )
            .unwrap()
        )
        runner = container.job_runner()
        steps = container.document_steps().for_stage(STAGES_BY_NAME["ingestion"])
        assert runner.run(document.id, steps).is_ok()
        for step in steps:
            count = value(metrics, "job_step_duration_seconds_count", step=step.label, outcome="ok")
            assert count == 1, step.label
    finally:
        close_container(container)


def test_the_push_path_keeps_its_names_and_fans_out_into_the_histogram() -> None:
    metrics = PrometheusMetrics(max_deliveries=5)
    push = ServerMetrics(connected_sockets=3, events_received=2, snapshots_sent=4)
    push.push_lag.observe_many(0.02, 3)
    metrics.register(PushPathCollector(push, subscription_up=lambda: True))
    found = samples(metrics)
    assert found[("websocket_connections", frozenset())] == 3
    assert found[("status_subscription_up", frozenset())] == 1
    assert found[("status_events_received_total", frozenset())] == 2
    assert found[("websocket_frames_sent_total", frozenset({("type", "snapshot")}))] == 4
    assert found[("status_push_lag_seconds_count", frozenset())] == 3
    assert found[("status_push_lag_seconds_bucket", frozenset({("le", "0.01")}))] == 0
    assert found[("status_push_lag_seconds_bucket", frozenset({("le", "0.025")}))] == 3
    assert found[("status_push_lag_seconds_sum", frozenset())] == 0.06
