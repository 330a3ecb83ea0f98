"""The results: a table on the terminal, ``results.json``, a chart, and docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.results import Row
from bench.targets import targets_table

BEGIN = "<!-- generated results: begin -->"
END = "<!-- generated results: end -->"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _verdict(row: Row) -> str:
    met = row.met
    if met is None:
        return "not measured" if row.value is None and row.target else ""
    return "met" if met else "NOT met"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| benchmark | case | measured | against | ratio | target | verdict | note |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for row in rows:
        measured = f"{_number(row.value)} {row.metric}" if row.value is not None else "—"
        against = f"{row.baseline} {_number(row.baseline_value)}" if row.baseline else ""
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None and row.baseline else ""
        note = row.note
        if "p50_ms" in row.extra:
            note = (
                f"p50 {row.extra['p50_ms']:.1f} ms, p99 {row.extra['p99_ms']:.1f} ms, "
                f"max {row.extra['max_ms']:.1f} ms" + (f"; {note}" if note else "")
            )
            if "p50_met" in row.extra:
                note += f"; p50 ≤ 5 ms {'met' if row.extra['p50_met'] else 'NOT met'}"
        if "cpu_ms_per_update" in row.extra:
            note = f"{row.extra['cpu_ms_per_update']:.2f} ms CPU/update in the load generator" + (
                f"; {note}" if note else ""
            )
        if "accept_seconds" in row.extra and row.metric == "KB/socket":
            note = f"RSS {row.extra['rss_before_mb']:.0f} → {row.extra['rss_after_mb']:.0f} MB" + (
                f"; {note}" if note else ""
            )
        lines.append(
            f"| {row.benchmark} | {row.case} | {measured} | {against} | {ratio} | "
            f"{row.target} | {_verdict(row)} | {note} |"
        )
    return "\n".join(lines)


def machine_section(machine: dict[str, Any], load: dict[str, Any]) -> str:
    others = load.get("top_other_processes", [])
    listed = "\n".join(
        f"  - {entry['cpu_seconds']:.1f} CPU-s: {entry['command']}" for entry in others
    )
    when = (
        f"- Ran {load.get('started_at', '?')} to {load.get('finished_at', '?')}"
        + (f", on commit {load['commit']}" if load.get("commit") else "")
        + ".\n"
    )
    return when + (
        f"- Machine: {machine['cores']} cores ({machine['cpu'] or 'unknown CPU'}), "
        f"{machine['memory_bytes'] / 2**30:.0f} GiB, Python {machine['python']}, "
        f"{machine['platform']}.\n"
        f"- The suite ran {load['seconds']:.0f} s; the machine was busy "
        f"{load['machine_busy_cores']:.2f} cores on average (load average "
        f"{load['loadavg_before'][0]:.2f} before, {load['loadavg_after'][0]:.2f} after); "
        f"the suite's own processes used {load['suite_cpu_seconds']:.0f} CPU-s.\n"
        f"- Other processes that used the CPU meanwhile (the servers the suite drives — "
        f"PostgreSQL, RabbitMQ, NATS, Redis — are shared with anything else that ran):\n"
        f"{listed or '  - none measurable'}"
    )


def write_json(path: Path, rows: list[Row], header: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({**header, "rows": [row.as_dict() for row in rows]}, indent=2) + "\n"
    )


def write_chart(path: Path, rows: list[Row]) -> bool:
    """Measured ratio against target ratio for every row that has a target."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    charted = [row for row in rows if row.target_ratio is not None and row.ratio is not None]
    if not charted:
        return False
    figure, axes = plt.subplots(figsize=(10, 0.42 * len(charted) + 1.5))
    labels = [
        f"{row.benchmark}: {row.case}" + (f" ({row.metric})" if row.lower_is_better else "")
        for row in charted
    ]
    ratios = [row.ratio or 0.0 for row in charted]
    colours = ["tab:green" if row.met else "tab:red" for row in charted]
    positions = list(range(len(charted)))
    axes.barh(positions, ratios, color=colours)
    for position, row in zip(positions, charted, strict=True):
        target = row.target_ratio or 0.0
        axes.plot([target, target], [position - 0.4, position + 0.4], color="black", linewidth=2)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(
        "measured ÷ baseline (green: target met); black tick: the target\n"
        "latency and memory: measured ÷ limit, lower is better"
    )
    axes.set_title("InsightHub benchmarks: ratios taken in the same run")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_markdown(
    path: Path, rows: list[Row], machine: dict[str, Any], load: dict[str, Any], chart: str
) -> None:
    """Replace the generated part of ``path``; the hand-written analysis around it stays."""
    generated = "\n\n".join(
        [
            BEGIN,
            f"_Generated by `python -m bench` on {load.get('finished_at', '')}._",
            machine_section(machine, load),
            "### The targets",
            targets_table(rows),
            "### Every figure",
            table(rows),
            f"![ratios against targets]({chart})" if chart else "",
            END,
        ]
    )
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            before, rest = text.split(BEGIN, 1)
            after = rest.split(END, 1)[1]
            path.write_text(before + generated + after)
            return
    path.write_text(
        "# Benchmarks\n\nRun `./scripts/bench` (or `python -m bench`).\n\n" + generated + "\n"
    )


def read_json(path: Path) -> tuple[list[Row], dict[str, Any]]:
    """The rows and header of a results file written by ``write_json``."""
    loaded: dict[str, Any] = json.loads(path.read_text())
    rows = []
    for raw in loaded.pop("rows"):
        raw.pop("ratio", None)
        raw.pop("met", None)
        rows.append(Row(**raw))
    return rows, loaded
