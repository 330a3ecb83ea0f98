"""What the machine is, and what else was using it while the benchmarks ran."""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def describe() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory = int(meminfo.read_text().split()[1]) * 1024
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_bytes": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def program(command: str) -> str:
    """A short name for a command line: the program, and for an interpreter its script."""
    parts = command.split()
    name = os.path.basename(parts[0])
    if name.startswith("python") or name in ("bash", "sh"):
        for part in parts[1:]:
            if part == "-m" or not part.startswith("-"):
                name += " " + os.path.basename(part)
                if part != "-m":
                    break
    return name[:60]


# Other processes are reported by kind only: the servers the suite drives, other Python
# processes (test suites, for instance), and everything else.
_SERVERS = ("postgres", "beam.smp", "nats-server", "redis-server", "epmd", "erl_child_setup")


def _by_kind(others: list[tuple[float, str]]) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for seconds, name in others:
        program_name = name.split()[0] if name else ""
        if program_name in _SERVERS:
            kind = "database and broker servers"
        elif program_name.startswith("python") or "pytest" in name:
            kind = "other Python processes"
        else:
            kind = "everything else"
        kinds[kind] = kinds.get(kind, 0.0) + seconds
    return {kind: round(seconds, 2) for kind, seconds in kinds.items()}


def _process_ticks() -> dict[int, tuple[str, int]]:
    usage: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # utime and stime (fields 14 and 15), plus children's once they were waited for.
        ticks = sum(int(value) for value in fields[11:15])
        name = program(command) if command else stat[stat.find("(") + 1 : stat.rfind(")")]
        usage[int(entry.name)] = (name, ticks)
    return usage


def _machine_busy_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot, all processes'."""
    return _machine_busy_ticks()[0] / _TICKS


@dataclass
class LoadWatch:
    """CPU used by every process between ``start`` and ``finish``, ours told apart."""

    started_at: float = 0.0
    _before: dict[int, tuple[str, int]] = field(default_factory=dict)
    _busy_before: tuple[int, int] = (0, 0)
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._before = _process_ticks()
        self._busy_before = _machine_busy_ticks()
        self.loadavg_before = os.getloadavg()

    def finish(self, ours: set[int]) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started_at
        after = _process_ticks()
        busy, total = _machine_busy_ticks()
        busy_share = (busy - self._busy_before[0]) / max(1, total - self._busy_before[1])
        others: list[tuple[float, str]] = []
        ours_seconds = 0.0
        ours.add(os.getpid())
        for pid, (name, ticks) in after.items():
            seconds = (ticks - self._before.get(pid, (name, 0))[1]) / _TICKS
            if pid in ours:
                ours_seconds += seconds
            elif seconds > 0.05:
                others.append((seconds, name))
        others.sort(reverse=True)
        cores = os.cpu_count() or 1
        return {
            "seconds": elapsed,
            "machine_busy_cores": busy_share * cores,
            "suite_cpu_seconds": ours_seconds,
            "loadavg_before": list(self.loadavg_before),
            "loadavg_after": list(os.getloadavg()),
            "other_cpu_seconds": sum(seconds for seconds, _ in others),
            "top_other_processes": [
                {"cpu_seconds": round(seconds, 2), "command": kind}
                for kind, seconds in sorted(
                    _by_kind(others).items(), key=lambda item: item[1], reverse=True
                )
            ],
        }
