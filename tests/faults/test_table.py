"""The figures table: a partial run replaces its own rows and keeps every other one."""

from __future__ import annotations

from tests.faults.harness import Figures
from tests.faults.run import BEGIN, END, table


def figures(scenario: str, transport: str, lost: int = 0) -> Figures:
    return Figures(scenario, transport, 5, 5, 4, lost, 0, True, 1.0, ["a note"])


def document_with(*rows: Figures) -> str:
    block = table(list(rows), [], 1.0, set(), ["rabbitmq"], "")
    return f"# Reliability\n\nhand-written\n\n{block}\n"


def data_rows(block: str) -> list[list[str]]:
    inner = block.split(BEGIN, 1)[1].split(END, 1)[0]
    lines = [
        line for line in inner.splitlines() if line.startswith("| ") and "Scenario" not in line
    ]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_a_partial_run_replaces_its_rows_and_keeps_the_others_in_order() -> None:
    before = document_with(
        figures("1. first", "rabbitmq"),
        figures("11. nested", "rabbitmq", lost=3),
        figures("1. first", "nats"),
    )
    rerun = figures("11. nested", "rabbitmq")
    block = table(
        [rerun, figures("2. second", "nats")],
        [],
        2.0,
        {("11", "rabbitmq"), ("2", "nats")},
        ["rabbitmq", "nats"],
        before,
    )

    rows = data_rows(block)
    assert [(r[0], r[1]) for r in rows] == [
        ("1. first", "rabbitmq"),
        ("11. nested", "rabbitmq"),
        ("1. first", "nats"),
        ("2. second", "nats"),
    ]
    assert rows[1][5] == "**0**"  # the rerun's figure, not the old row's 3
    assert "the other rows are from earlier runs" in block


def test_a_run_of_everything_keeps_no_old_row() -> None:
    before = document_with(figures("1. first", "rabbitmq", lost=2))
    block = table(
        [figures("1. first", "rabbitmq")], [], 1.0, {("1", "rabbitmq")}, ["rabbitmq"], before
    )

    assert [r[5] for r in data_rows(block)] == ["**0**"]
    assert "earlier runs" not in block
