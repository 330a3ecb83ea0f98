"""``scripts/faults``: run the fault scenarios, print one row each, and write the table.

    python -m tests.faults.run [--transport rabbitmq,nats,redis] [--only 1,3] [--load]
        [--no-docs]

The rows of the run replace theirs between the figures markers of docs/reliability.md (rows
of scenarios or transports not run are kept), so the published figures are always those of the
last run of each scenario, never typed by hand. The document is read and rewritten under a
lock, so one run per transport may go at once. Each row printed is followed by the scenario's
wall-clock seconds (set-up and tear-down included); the document does not keep them.
Exit status 1 if any row lost an event or did not converge.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.faults.harness import TRANSPORTS, Figures
from tests.faults.scenarios import SCENARIOS, in_order_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN = "<!-- figures:begin (written by scripts/faults; do not edit by hand) -->"
END = "<!-- figures:end -->"
COLUMNS = (
    "Scenario",
    "Transport",
    "Committed",
    "Published",
    "Delivered to sockets",
    "Lost",
    "Duplicates absorbed",
    "Reconnects resumed",
    "Bytes on reconnect (a snapshot instead)",
    "All resumed in (feed reads)",
    "Final view == DB",
    "Notes",
)
# Where the resume columns sit: rows written before they existed are read with them empty.
RESUME_COLUMNS = slice(7, 10)
NOT_MEASURED = "–"


def row(figures: Figures, *, for_doc: bool = False) -> str:
    # Where the logs of a failed run were kept matters on this run's console only.
    notes = [n for n in figures.notes if not (for_doc and n.startswith("logs kept in"))]
    cells = (
        figures.scenario,
        figures.transport,
        str(figures.committed),
        str(figures.published),
        str(figures.delivered),
        f"**{figures.lost}**" if figures.lost >= 0 else "n/a",
        str(figures.duplicates),
        *resume_cells(figures),
        "yes" if figures.converged else "**NO**",
        "; ".join(notes).replace("|", "/"),
    )
    return "| " + " | ".join(cells) + " |"


def resume_cells(figures: Figures) -> tuple[str, str, str]:
    """How reconnections were answered, their bytes against a snapshot's, and the storm's time."""
    if figures.reconnects is None:
        return NOT_MEASURED, NOT_MEASURED, NOT_MEASURED
    resumed = f"{figures.resumed}/{figures.reconnects}"
    if figures.resumed != figures.reconnects:
        resumed = f"**{resumed}**"
    size = f"{kilobytes(figures.reconnect_bytes)} ({kilobytes(figures.snapshot_bytes)})"
    timing = NOT_MEASURED
    if figures.resume_seconds is not None:
        timing = f"{figures.resume_seconds:.1f} s ({figures.feed_reads} reads)"
    return resumed, size, timing


def kilobytes(count: int) -> str:
    return f"{count} B" if count < 1024 else f"{count / 1024:.1f} KiB"


def cells_of(line: str) -> list[str]:
    """A row's cells; a row written before the resume columns gets them empty."""
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    missing = len(COLUMNS) - len(cells)
    if missing == RESUME_COLUMNS.stop - RESUME_COLUMNS.start:
        cells[RESUME_COLUMNS.start : RESUME_COLUMNS.start] = [NOT_MEASURED] * missing
    return cells


def number_of(cells: list[str]) -> str:
    return cells[0].split(".", 1)[0]


def earlier_rows(document: str, ran: set[tuple[str, str]]) -> list[str]:
    """The document's rows of the (scenario number, transport) pairs this run did not cover."""
    if BEGIN not in document:
        return []
    block = document.split(BEGIN, 1)[1].split(END, 1)[0]
    kept = []
    for line in block.splitlines():
        cells = cells_of(line)
        if len(cells) != len(COLUMNS) or cells[1] not in TRANSPORTS:
            continue
        if (number_of(cells), cells[1]) not in ran:
            kept.append("| " + " | ".join(cells) + " |")
    return kept


def _order(line: str) -> tuple[int, int]:
    cells = cells_of(line)
    number = number_of(cells)
    return TRANSPORTS.index(cells[1]), int(number) if number.isdigit() else 0


def table(
    rows: list[Figures],
    extra: list[str],
    seconds: float,
    ran: set[tuple[str, str]],
    transports: list[str],
    document: str,
) -> str:
    """The figures block: this run's rows, and the document's rows of everything else."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kept = earlier_rows(document, ran)
    numbers = sorted({int(number) for number, _ in ran})
    which = ", ".join(str(n) for n in numbers)
    scope = (
        f"Last run (scenarios {which} on {', '.join(transports)}): {when}, "
        f"Python {platform.python_version()}"
    )
    if kept:
        scope += "; the other rows are from earlier runs"
    body = sorted([row(f, for_doc=True) for f in rows] + kept, key=_order)
    lines = [
        BEGIN,
        f"{scope}, {seconds:.0f} s in all.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *body,
        "",
        *extra,
        END,
    ]
    return "\n".join(lines)


def write_doc(text: str, block: str) -> str:
    """``text`` with its figures block replaced by ``block``."""
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def update_doc(make_block: Callable[[str], str]) -> None:
    """Rewrite the document's figures with ``make_block(document)``, holding a lock on it."""
    DOC.touch()
    with DOC.open("r+") as document:
        fcntl.flock(document, fcntl.LOCK_EX)
        text = document.read() or f"# Reliability\n\n{BEGIN}\n{END}\n"
        updated = write_doc(text, make_block(text))
        document.seek(0)
        document.write(updated)
        document.truncate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/faults", description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default="rabbitmq", help="comma-separated transports")
    parser.add_argument(
        "--only", default="", help=f"comma-separated scenario numbers (1-{len(SCENARIOS)})"
    )
    parser.add_argument("--load", action="store_true", help="also run the load run")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the document")
    args = parser.parse_args(argv)
    transports = [t for t in args.transport.split(",") if t]
    for transport in transports:
        if transport not in TRANSPORTS:
            parser.error(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")
    numbers = {int(n) for n in args.only.split(",") if n} or set(range(1, len(SCENARIOS) + 1))
    started = time.monotonic()
    rows: list[Figures] = []
    ran: set[tuple[str, str]] = set()
    print("| " + " | ".join(COLUMNS) + " |", flush=True)
    for transport in transports:
        for number, scenario in in_order_for(transport):
            if number not in numbers:
                continue
            scenario_started = time.monotonic()
            try:
                figures = scenario(transport)
            except Exception as exc:  # a scenario that crashes is a failed row, not a crash
                traceback.print_exc()
                figures = Figures(
                    scenario=f"{number}. {scenario.__name__}",
                    transport=transport,
                    committed=0,
                    published=0,
                    delivered=0,
                    lost=-1,
                    duplicates=0,
                    converged=False,
                    seconds=0.0,
                    notes=[f"scenario failed: {type(exc).__name__}: {exc}"[:300]],
                )
            rows.append(figures)
            ran.add((str(number), transport))
            print(f"{row(figures)}  {time.monotonic() - scenario_started:.0f} s", flush=True)
    extra: list[str] = []
    if args.load:
        from tests.load.run import run_load

        summary = run_load()
        extra = ["Load run:", "", *summary.lines()]
        print("\n".join(extra), flush=True)
        rows_hold = summary.holds
    else:
        rows_hold = True
    elapsed = time.monotonic() - started
    if not args.no_docs:
        update_doc(lambda document: table(rows, extra, elapsed, ran, transports, document))
        print(f"figures written to {DOC}", flush=True)
    return 0 if rows_hold and all(f.holds for f in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
