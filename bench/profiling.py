"""Sampling a running process with py-spy, and summarising where its time went."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``function (file:line)`` with the file's machine-specific directories left out."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3.11/", "/lib/python3.12/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        for package in ("bench", "entrypoints", "adapters", "application", "domain"):
            if f"/{package}/" in path:
                path = package + "/" + path.split(f"/{package}/", 1)[1]
                break
    return f"{match['function']} ({path})"


def summarise(raw: str, top: int = 25) -> str:
    """Self and inclusive shares of the hottest functions in py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


class Spy:
    """``py-spy record`` on one process until ``stop``; writes a summary next to the raw data."""

    def __init__(self, pid: int, output: Path) -> None:
        self._output = output
        self._raw = output.with_suffix(".raw")
        executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self._process: subprocess.Popen[bytes] | None = None
        if Path(executable).exists():
            self._process = subprocess.Popen(
                [
                    executable,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--output",
                    str(self._raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return
        if self._raw.exists():
            self._output.write_text(summarise(self._raw.read_text()))
            self._raw.unlink()
