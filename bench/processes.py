"""Starting, watching and stopping the processes of a benchmark (servers, relays, workers)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Every process this suite started, so that the machine report can tell them from the rest.
STARTED_PIDS: set[int] = set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Background:
    """A process running beside the benchmark, its output going to a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(name: str, argv: Sequence[str], environ: Mapping[str, str], log_dir: Path) -> Background:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(argv), env=dict(environ), stdout=log_file, stderr=subprocess.STDOUT
        )
    STARTED_PIDS.add(process.pid)
    return Background(name, process, log_path)


def insighthub(
    name: str, args: Sequence[str], environ: Mapping[str, str], log_dir: Path
) -> Background:
    """``insighthub ARGS``, exactly as the command line runs it."""
    return start(name, [sys.executable, "-m", "entrypoints.cli", *args], environ, log_dir)


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float, watched: Background | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watched is not None:
            watched.check_running()
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(0.05)
    tail = f"\n{watched.log_tail()}" if watched is not None else ""
    raise RuntimeError(f"timed out waiting for {what}{tail}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)


@contextlib.contextmanager
def running(*backgrounds: Background) -> Iterator[None]:
    try:
        yield
    finally:
        for background in reversed(backgrounds):
            background.stop()


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_json(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    timeout: float,
    stdin_text: str | None = None,
) -> Any:
    """Run a load-generating process to the end; the JSON object it printed last."""
    process = subprocess.Popen(
        list(argv),
        env=dict(environ),
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    STARTED_PIDS.add(process.pid)
    try:
        out, err = process.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise RuntimeError(f"{argv[2:4]} timed out after {timeout}s:\n{err[-3000:]}") from None
    if process.returncode != 0:
        raise RuntimeError(f"{argv[2:4]} exited with {process.returncode}:\n{err[-3000:]}")
    return last_json(out)


def last_json(text: str) -> Any:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result printed:\n{text[-2000:]}")


class Conversation:
    """A child process that prints a JSON line when ready and reads commands on stdin."""

    def __init__(self, argv: Sequence[str], environ: Mapping[str, str], log_dir: Path) -> None:
        self._stderr_path = log_dir / f"client-{time.monotonic_ns()}.log"
        self._stderr: TextIO = self._stderr_path.open("w")
        self.process = subprocess.Popen(
            list(argv),
            env=dict(environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        STARTED_PIDS.add(self.process.pid)

    def read(self, timeout: float) -> Any:
        """The next JSON line the child prints."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self.process.stdout.readline()
                if not line:
                    break
                if line.startswith("{"):
                    return json.loads(line)
        self.process.kill()
        raise RuntimeError(
            f"client gave no answer in {timeout}s:\n{self._stderr_path.read_text()[-3000:]}"
        )

    def say(self, command: Mapping[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._stderr.close()
