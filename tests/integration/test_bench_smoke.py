"""The benchmark suite still runs: every benchmark once, at a tiny size, on the real servers.

Speed is never asserted here; the targets' pass or fail lives in the results file. What is
asserted is that every row the suite promises is there and carries a number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.nats,
    pytest.mark.redis,
    pytest.mark.slow,
    # Every benchmark once at its smallest: a few minutes on a busy 2-core machine.
    pytest.mark.timeout(480),
]

ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ("rabbitmq", "nats", "redis")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench")
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--output",
            str(output),
            "--docs",
            str(output / "benchmarks.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    loaded: dict[str, Any] = json.loads((output / "results.json").read_text())
    loaded["chart_written"] = (output / "benchmarks.png").stat().st_size > 0
    loaded["page"] = (output / "benchmarks.md").read_text()
    return loaded


def _rows(results: dict[str, Any], benchmark: str) -> list[dict[str, Any]]:
    return [row for row in results["rows"] if row["benchmark"] == benchmark]


def _cases(results: dict[str, Any], benchmark: str) -> set[str]:
    return {row["case"] for row in _rows(results, benchmark)}


def test_every_row_carries_a_number(results: dict[str, Any]) -> None:
    unmeasured = [f"{r['case']}: {r['note']}" for r in results["rows"] if r["value"] is None]
    assert unmeasured == []
    for row in results["rows"]:
        assert isinstance(row["value"], int | float)
        assert row["value"] >= 0
        if row["target"]:
            assert isinstance(row["ratio"], int | float)
            assert isinstance(row["met"], bool)


def test_updates_per_second_for_every_transport_and_delivery(results: dict[str, Any]) -> None:
    cases = _cases(results, "1 updates/s")
    for transport in TRANSPORTS:
        assert {f"{transport} raw floor", f"{transport} direct", f"{transport} outbox"} <= cases


def test_latency_for_every_transport_mode_and_pace(results: dict[str, Any]) -> None:
    cases = _cases(results, "2 latency")
    for transport in TRANSPORTS:
        for delivery in ("direct", "outbox"):
            for pace in ("200/s", "saturation"):
                assert f"{transport} {delivery} @ {pace}" in cases
    for row in _rows(results, "2 latency"):
        if row["metric"] == "p99 ms":
            assert row["extra"]["delivered"] == row["extra"]["updates"]


def test_fan_out_against_both_peers(results: dict[str, Any]) -> None:
    rows = _rows(results, "3 fan-out")
    baselines = {row["baseline"] for row in rows if row["target"]}
    assert baselines == {"bare Starlette", "python-socketio"}
    assert all(row["baseline_value"] for row in rows if row["target"])
    # Interleaved rounds: every figure is a median with its spread.
    assert all(len(row["extra"]["spread"]["rounds"]) == 2 for row in rows)


def test_connections_and_workers(results: dict[str, Any]) -> None:
    metrics = {row["metric"] for row in _rows(results, "4 connections")}
    assert {"KB/socket", "s"} <= metrics
    workers = _rows(results, "5 workers")
    assert [row["metric"] for row in workers] == ["documents/s"]


def test_the_machine_and_its_load_are_reported(results: dict[str, Any]) -> None:
    assert results["machine"]["cores"] >= 1
    assert "top_other_processes" in results["load"]
    assert results["chart_written"]


def test_adversarial_text_for_graph_building_and_chunking(results: dict[str, Any]) -> None:
    rows = _rows(results, "6 adversarial text")
    cases = {row["case"] for row in rows}
    for work in ("graph of one text", "chunk + graph", "chunk"):
        assert f"{work}: hyphenated capitals" in cases
    assert all(row["baseline_value"] is not None for row in rows)


def test_concurrent_writers_keep_order_on_every_transport(results: dict[str, Any]) -> None:
    rows = _rows(results, "8 concurrent writers")
    for transport in TRANSPORTS:
        for delivery in ("direct", "outbox"):
            for mode in ("threads", "processes"):
                case = f"{transport} {delivery}, 2 {mode}"
                order = [r for r in rows if r["case"] == f"{case}: events in order"]
                assert [r["met"] for r in order] == [True], case
        drained = [r for r in rows if r["case"].endswith("relay backlog drained")]
        assert any(r["case"].startswith(f"{transport} outbox") for r in drained)


def test_worker_overhead_for_every_stage_that_ran(results: dict[str, Any]) -> None:
    rows = _rows(results, "9 worker overhead")
    assert {row["case"].split(",")[0] for row in rows} >= {"ingestion", "embeddings"}
    for row in rows:
        assert 0 <= row["value"] <= 100
        assert row["extra"]["documents"] >= 1


def test_the_page_gives_every_target_a_verdict(results: dict[str, Any]) -> None:
    from bench.targets import TARGETS

    page = results["page"]
    assert "### The targets" in page
    for target in TARGETS:
        line = next(line for line in page.splitlines() if line.startswith(f"| {target.text} |"))
        assert line.split(" | ")[1] in {"met", "NOT met", "not measured", "met where measured"}
