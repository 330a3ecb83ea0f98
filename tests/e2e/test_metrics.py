"""``/metrics`` of the server, a worker and the relay, parsed with prometheus-client's parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from application.pipeline import DOCUMENT_STEPS
from tests.e2e.conftest import GOOD_TEXT, ServerProcess, ready_workspace, settled_document, upload
from tests.support.processes import deployment, free_port, wait_until

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_the_servers_metrics_parse_and_the_histograms_move_during_a_run(
    server: ServerProcess, new_user: Callable[[], int]
) -> None:
    url = f"{server.base_url}/metrics"
    before = scrape(url)
    for name in (
        "websocket_connections",
        "status_subscription_up",
        "status_events_received_total",
        "status_events_lost_total",
        "status_push_lag_seconds_count",
    ):
        assert any(n == name for n, _ in before), name
    user = new_user()
    with (
        connect(server.ws_url(server.token(user)), open_timeout=10) as ws,
        server.client(user) as client,
    ):
        ws.recv(timeout=10)
        workspace = ready_workspace(client)
        document = upload(client, workspace["id"], "notes.txt", GOOD_TEXT).json()
        assert settled_document(client, document["id"])["processing_status"] == "ready"
        after = scrape(url)
    assert total(after, "status_push_lag_seconds_count") > total(
        before, "status_push_lag_seconds_count"
    )
    for step in DOCUMENT_STEPS:
        moved = total(after, "job_step_duration_seconds_count", step=step) - total(
            before, "job_step_duration_seconds_count", step=step
        )
        assert moved >= 1, step
    assert total(after, "work_deliveries_total", outcome="acked") > total(
        before, "work_deliveries_total", outcome="acked"
    )
    assert total(after, "websocket_frames_sent_total", type="snapshot") >= 1


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_and_the_relay_serve_their_own_metrics(tmp_path: Path) -> None:
    with deployment("redis", tmp_path, DELIVERY="outbox") as place:
        worker_port, relay_port = free_port(), free_port()
        place.processes.worker("all", "--metrics-port", str(worker_port))
        relay = place.processes.start("relay", "--metrics-port", str(relay_port))
        wait_until(lambda: "relay started" in relay.log(), timeout=30, what="relay start")
        worker_url = f"http://127.0.0.1:{worker_port}/metrics"
        relay_url = f"http://127.0.0.1:{relay_port}/metrics"
        assert total(scrape(worker_url), "job_step_duration_seconds_count") == 0

        workspace = place.ready_workspace(user_id=31)
        document = place.upload(workspace, "notes.txt", GOOD_TEXT)
        (settled,) = place.settled([document.id], timeout=60)
        assert settled.processing_status.value == "ready"

        worker = scrape(worker_url)
        for step in DOCUMENT_STEPS:
            assert total(worker, "job_step_duration_seconds_count", step=step) >= 1, step
        assert total(worker, "work_deliveries_total", outcome="acked") >= 3
        assert total(worker, "work_dead_letters_total") == 0
        assert ("status_events_lost_total", frozenset()) in worker
        assert total(worker, "process_cpu_seconds_total") > 0

        relayed = scrape(relay_url)
        assert total(relayed, "outbox_events_relayed_total") >= 1
        assert total(relayed, "outbox_relay_batch_seconds_count") >= 1
        assert total(relayed, "outbox_relay_failing_batches") == 0
