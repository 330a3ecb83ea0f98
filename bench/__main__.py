"""``python -m bench``: run every benchmark, print the table, write the results and the chart."""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import processes, report
from bench.machine import LoadWatch, describe
from bench.results import Row
from bench.services import TRANSPORTS, Endpoints
from bench.suite import BENCHMARKS, Context, Sizes

ROOT = Path(__file__).resolve().parent.parent
# Each server and each client process holds one descriptor per socket, plus its own.
DESCRIPTORS_NEEDED = 10_000 + 1_024


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's (and so its children's) open-file limit as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the status pipeline side by side with the raw floor and with peers.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it works")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help="transports for the pipeline benchmarks (repeatable; default all)",
    )
    parser.add_argument(
        "--max-sockets",
        type=int,
        default=10_000,
        help="largest socket count for fan-out and connections (default 10000; lower it on "
        "a machine that cannot hold that many)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench",
        help="where results.json and the chart go (default bench/)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="the Markdown page to update (default docs/benchmarks.md; none with --smoke)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile: the update loop (pyinstrument), the relay and the servers (py-spy)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: redraw the chart and the page from the existing results.json",
    )
    return parser.parse_args(argv)


def render(args: argparse.Namespace) -> int:
    rows, header = report.read_json(args.output / "results.json")
    report.write_json(args.output / "results.json", rows, header)
    chart = args.output / "benchmarks.png"
    charted = report.write_chart(chart, rows)
    docs = args.docs or ROOT / "docs" / "benchmarks.md"
    relative = os.path.relpath(chart, docs.parent) if charted else ""
    report.write_markdown(docs, rows, header["machine"], header["load"], relative)
    print(report.table(rows))
    return 0


_OUTPUTS = (
    ":!bench/profiles",
    ":!bench/results.json",
    ":!bench/benchmarks.png",
    ":!docs/benchmarks.md",
)


def _commit() -> str:
    """The commit of the code measured, with ``+changes`` when the tree differs from it."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # The suite's own outputs are not the code it measures.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *_OUTPUTS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + (" +changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    os.chdir(ROOT)
    if args.render:
        return render(args)
    limit = raise_descriptor_limit(DESCRIPTORS_NEEDED)
    max_sockets = args.max_sockets
    if limit < max_sockets + 1_024:
        max_sockets = max(100, limit - 1_024)
        print(f"open-file limit is {limit}: sockets scaled down to {max_sockets}", flush=True)
    sizes = Sizes.smoke() if args.smoke else Sizes.full(max_sockets)
    args.output.mkdir(parents=True, exist_ok=True)
    profile_dir = args.output / "profiles" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(exist_ok=True)
    transports = args.transport or list(TRANSPORTS)
    chosen = args.only or list(BENCHMARKS)
    rows: list[Row] = []
    watch = LoadWatch()
    watch.start()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = _commit()
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs:
        context = Context(
            endpoints=Endpoints.from_environ(),
            sizes=sizes,
            log_dir=Path(logs),
            profile_dir=profile_dir,
            log=lambda line: print(line, flush=True),
        )
        for name in chosen:
            started = time.monotonic()
            rows += BENCHMARKS[name](context, transports)
            print(f"  ({name}: {time.monotonic() - started:.0f} s)", flush=True)
    load = watch.finish(set(processes.STARTED_PIDS))
    load["started_at"] = started_at
    load["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load["commit"] = commit
    machine = describe()
    machine["open_file_limit"] = limit
    header = {
        "machine": machine,
        "load": load,
        "smoke": args.smoke,
        "sizes": sizes.__dict__,
        "max_sockets": max_sockets,
    }
    report.write_json(args.output / "results.json", rows, header)
    chart = args.output / "benchmarks.png"
    charted = report.write_chart(chart, rows)
    docs = args.docs or (None if args.smoke else ROOT / "docs" / "benchmarks.md")
    if docs is not None:
        relative = os.path.relpath(chart, docs.parent) if charted else ""
        report.write_markdown(docs, rows, machine, load, relative)
    print()
    print(report.machine_section(machine, load))
    print()
    print(report.table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
