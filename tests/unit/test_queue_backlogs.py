"""Queue backlogs as Prometheus gauges and as rows of the console's figures, over a fake."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.memory.broker import InMemoryBroker
from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.operations import (
    InMemoryOperatorLog,
    InMemoryStuckWork,
    InMemoryWorkerRegistry,
)
from adapters.memory.repository import InMemoryStatusRepository
from adapters.prometheus.metrics import PrometheusMetrics
from adapters.prometheus.queues import DEPTH, OLDEST_AGE, QueueBacklogCollector
from application.operations import OperatorConsole
from domain.events import WORK_QUEUES
from domain.ports import WorkerBeat
from entrypoints.operations_json import figures_json
from tests.fakes.messaging import SettableBacklogs

QUEUES = ("ingestion", "embeddings", "graph")


def gauges(metrics: PrometheusMetrics) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels["queue"]): sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if "queue" in sample.labels
    }


def test_the_gauges_are_read_at_each_scrape_and_move_with_the_queues() -> None:
    backlogs = SettableBacklogs()
    metrics = PrometheusMetrics(max_deliveries=3)
    metrics.register(QueueBacklogCollector(backlogs, QUEUES))
    backlogs.set("ingestion", 4, 12.5, unacknowledged=1)
    first = gauges(metrics)
    assert first[(DEPTH, "ingestion")] == 4
    assert first[(OLDEST_AGE, "ingestion")] == 12.5
    assert first[("insighthub_queue_unacknowledged", "ingestion")] == 1
    assert first[(DEPTH, "graph")] == 0
    assert first[(OLDEST_AGE, "graph")] == 0, "an empty queue's oldest request is 0 s old"
    backlogs.set("ingestion", 1, 30.0)
    later = gauges(metrics)
    assert later[(DEPTH, "ingestion")] == 1
    assert later[(OLDEST_AGE, "ingestion")] == 30.0
    assert ("insighthub_queue_unacknowledged", "ingestion") not in later


def test_an_age_the_transport_cannot_tell_and_an_unreadable_queue_are_absent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backlogs = SettableBacklogs()
    metrics = PrometheusMetrics(max_deliveries=3)
    metrics.register(QueueBacklogCollector(backlogs, QUEUES))
    backlogs.set("ingestion", 2, None)
    backlogs.failing.add("graph")
    with caplog.at_level(logging.WARNING):
        read = gauges(metrics)
    assert read[(DEPTH, "ingestion")] == 2
    assert (OLDEST_AGE, "ingestion") not in read, "unknown must not read as 0"
    assert not {key for key in read if key[1] == "graph"}, "an outage is not an empty queue"
    assert "graph" in caplog.text
    # The existing series are still there.
    assert "work_deliveries_total" in metrics.exposition().decode()


def test_the_console_figures_join_backlogs_dead_letters_and_rates_per_stage() -> None:
    broker = InMemoryBroker()
    backlogs = SettableBacklogs()
    registry = InMemoryWorkerRegistry()
    repository = InMemoryStatusRepository()
    console = OperatorConsole(
        broker.dead_letters(),
        list(WORK_QUEUES),
        registry,
        InMemoryOperatorLog(),
        InMemoryStuckWork(repository, InMemoryDocumentLeases(repository)),
        heartbeat_seconds=5,
        backlogs=backlogs,
    )
    backlogs.set("ingestion", 3, 7.0)
    backlogs.failing.add("graph")
    registry.beat(
        WorkerBeat(worker_id="w1", stage="ingestion", host="h", pid=1, processed=4, failed=1)
    )
    registry.beat(WorkerBeat(worker_id="w2", stage="provisioning,graph", host="h", pid=2))
    rows = {row.stage: figures_json(row) for row in console.figures()}
    assert list(rows) == [*WORK_QUEUES, "provisioning,graph"]
    assert rows["ingestion"]["depth"] == 3
    assert rows["ingestion"]["oldest_age_seconds"] == 7.0
    assert rows["ingestion"]["dead_letters"] == 0
    assert rows["ingestion"]["workers"] == 1
    assert rows["graph"]["depth"] is None, "an unreadable queue shows no figure, not 0"
    assert rows["graph"]["dead_letters"] == 0
    assert rows["provisioning,graph"]["depth"] is None
    assert rows["provisioning,graph"]["workers"] == 1
