"""Runs a function in a child process under CPU-time, memory and wall-clock limits.

Children come from a ``forkserver``: the worker process has broker and lease threads, and a
plain ``fork`` of a threaded process can copy a lock some other thread holds, leaving the
child stuck for ever. The fork server is a single-threaded process started once (by spawn),
with the extraction modules already imported, so each child is a cheap fork of a clean
process rather than a fresh interpreter — a few milliseconds instead of a few hundred.
The fork server also reaps the children, so none is left a zombie of the worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from application.deadlines import StepDeadline
from domain.limits import Limit, StepLimitExceeded, StepStopped
from domain.ports.processing import UnreadableFile

T = TypeVar("T")

PRELOADED_MODULES = ("adapters.processing.extraction", "pypdf")

# The child's exit status when it ran out of memory but could not even report it.
_OUT_OF_MEMORY_EXIT = 86
# Errors a child reports as themselves; anything else comes back as a crash.
_REPORTED = (StepLimitExceeded, StepStopped, UnreadableFile)


class ChildCrashed(Exception):
    """The child process died or failed without a result (a bug or a native crash)."""


@dataclass(frozen=True, slots=True)
class ChildLimits:
    """What one child may use: CPU seconds, address space, wall-clock seconds."""

    cpu_seconds: int = 30
    memory_mb: int = 1024
    wall_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.cpu_seconds < 1 or self.memory_mb < 1 or not self.wall_seconds > 0:
            raise ValueError(f"limits must be positive (CPU in whole seconds), got {self}")


def _child_main(
    results: Connection,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    cpu_seconds: int,
    memory_bytes: int,
    alarm_seconds: int,
) -> None:
    # Its own process group, so that a kill also takes whatever it may have started.
    os.setpgrp()
    # The child reports its outcome to the parent, which logs it in the process's format;
    # a library's own lines (pypdf's warnings about damage it read past) would reach the
    # worker's stderr unformatted, so the child logs nothing itself.
    logging.disable(logging.CRITICAL)
    # The parent kills it at its wall-clock limit; should the parent die first, the
    # alarm (its default action ends the process) still does, a second later.
    signal.alarm(alarm_seconds)
    # Past the soft limit the kernel sends SIGXCPU; the hard limit a second later, SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        outcome = ("memory", None)
    except _REPORTED as exc:
        outcome = ("raised", exc)
    except BaseException as exc:  # reported, never lost: the parent turns it into a crash
        lines = str(exc).strip().splitlines()
        outcome = ("crashed", f"{type(exc).__name__}: {lines[0][:200] if lines else ''}")
    try:
        results.send(outcome)
    except MemoryError:
        os._exit(_OUT_OF_MEMORY_EXIT)
    results.close()
    # Nothing of a throwaway child needs cleaning up; the interpreter's own exit is slower.
    os._exit(0)


class RunningChild(Generic[T]):
    """A started child: ``result()`` waits for it; ``stop()`` (from any thread) kills it."""

    def __init__(
        self,
        process: multiprocessing.process.BaseProcess,
        results: Connection,
        step: str,
        limits: ChildLimits,
        deadline: StepDeadline | None,
    ) -> None:
        self._process = process
        self._results = results
        self._step = step
        self._limits = limits
        self._deadline = deadline
        self._stopped = threading.Event()
        self._settled = False
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self._closed else self._process.pid

    def stop(self) -> None:
        """Kill the child now; ``result()`` then raises ``StepStopped``."""
        self._stopped.set()
        self._kill()

    def result(self) -> T:
        """The function's return value, or the error that names the limit it went past."""
        if self._settled:
            raise RuntimeError("the result of a child can be taken only once")
        self._settled = True
        forget = self._deadline.on_stop(self.stop) if self._deadline is not None else None
        try:
            return self._await()
        finally:
            if forget is not None:
                forget()
            self._kill()
            self._process.join()
            with self._lock:
                self._closed = True
                self._results.close()
                self._process.close()

    def _await(self) -> T:
        wall = self._limits.wall_seconds
        deadline_binds = self._deadline is not None and self._deadline.remaining() < wall
        timeout = self._deadline.remaining() if self._deadline and deadline_binds else wall
        ready = wait([self._results, self._process.sentinel], timeout)
        if self._stopped.is_set():
            raise self._stopped_error()
        if not ready:
            self._kill()
            if self._deadline is not None and deadline_binds:
                raise self._deadline.exceeded()
            raise StepLimitExceeded(self._step, Limit.wall_clock(wall))
        outcome: tuple[str, Any] | None = None
        if self._results in ready or self._results.poll():
            with contextlib.suppress(EOFError, OSError):
                outcome = self._results.recv()
        if outcome is None:
            self._process.join()
            raise self._died(self._process.exitcode)
        kind, value = outcome
        if kind == "ok":
            result: T = value
            return result
        if kind == "raised":
            raise value
        if kind == "memory":
            raise StepLimitExceeded(self._step, Limit.memory(self._limits.memory_mb))
        raise ChildCrashed(f"{self._step} failed in its child process ({value})")

    def _died(self, exitcode: int | None) -> Exception:
        if self._stopped.is_set():
            return self._stopped_error()
        if exitcode == -signal.SIGXCPU:
            return StepLimitExceeded(self._step, Limit.cpu_time(self._limits.cpu_seconds))
        if exitcode == -signal.SIGALRM:
            if self._deadline is not None and self._deadline.expired:
                return self._deadline.exceeded()
            return StepLimitExceeded(self._step, Limit.wall_clock(self._limits.wall_seconds))
        if exitcode in (_OUT_OF_MEMORY_EXIT, -signal.SIGKILL):
            # Nobody here killed it: the kernel did, past the hard CPU limit or out of memory.
            return StepLimitExceeded(self._step, Limit.memory(self._limits.memory_mb))
        if exitcode is not None and exitcode < 0:
            how = f"signal {signal.Signals(-exitcode).name}"
        else:
            how = f"exit status {exitcode}"
        return ChildCrashed(f"{self._step} crashed in its child process ({how})")

    def _stopped_error(self) -> StepStopped:
        # A stop of the step (a cancellation) is reported under the step's own name.
        return StepStopped(self._deadline.step if self._deadline else self._step)

    def _kill(self) -> None:
        with self._lock:
            if self._closed:
                return
            pid = self._process.pid
            if pid is None:
                return
            # The group outlives its leader while anything the child started still runs, and
            # the kernel reuses no pid still naming a group: this reaches only what is ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            if self._process.exitcode is None:
                # Not yet its own group leader: the process alone, then.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class Sandbox:
    """Starts functions in limited child processes of a shared fork server."""

    def __init__(self, preload: Sequence[str] = PRELOADED_MODULES) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._preload = list(preload)
        self._prepared = False
        self._lock = threading.Lock()

    def start(
        self,
        step: str,
        fn: Callable[..., T],
        *args: Any,
        limits: ChildLimits,
        deadline: StepDeadline | None = None,
    ) -> RunningChild[T]:
        """Start ``fn(*args)`` (both picklable; ``fn`` a module-level function) in a child."""
        self._prepare()
        wall = limits.wall_seconds
        if deadline is not None:
            wall = min(wall, deadline.remaining())
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_child_main,
            args=(
                sender,
                fn,
                args,
                limits.cpu_seconds,
                limits.memory_mb * 1024 * 1024,
                math.ceil(wall) + 1,
            ),
            name=f"sandbox-{step}",
            daemon=True,
        )
        try:
            process.start()
        finally:
            # The child holds its own copy; without closing ours, its death reads as no EOF.
            sender.close()
        return RunningChild(process, receiver, step, limits, deadline)

    def run(
        self,
        step: str,
        fn: Callable[..., T],
        *args: Any,
        limits: ChildLimits,
        deadline: StepDeadline | None = None,
    ) -> T:
        """``fn(*args)`` in a child, waited for; see ``RunningChild.result``."""
        return self.start(step, fn, *args, limits=limits, deadline=deadline).result()

    def _prepare(self) -> None:
        with self._lock:
            if not self._prepared:
                # Takes effect when the fork server starts, which is at the first child.
                self._context.set_forkserver_preload([*_main_modules(), *self._preload])
                self._prepared = True


def _main_modules() -> list[str]:
    """What a child would import again for the parent's main module, unless preloaded.

    Each child is prepared like a spawned process: it runs the parent's main module again.
    A main given as a file is preloaded whole (``__main__``); one run with ``-m`` cannot be
    (a child finding it already imported warns), so the modules of its package it imported,
    and with them their dependencies, are preloaded instead and only its own body runs again.
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if not name:
        return ["__main__"]
    package = name.partition(".")[0] + "."
    return sorted(m for m in list(sys.modules) if m.startswith(package) and m != name)
