"""Step deadlines: how long a step may run, and a token the step and its helpers check.

A ``StepDeadline`` is the cancellation token of one run of one step. The step's own code
checks it cooperatively (``checkpoint()``), a child process running part of the step is
killed when it runs out or is stopped, and the document's lease is not renewed past it, so
a step that hangs anyway loses its document to the lease sweeper instead of pinning it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from domain.limits import Limit, StepLimitExceeded, StepStopped
from domain.ports import DocumentLeases

T = TypeVar("T")

DEFAULT_STEP_SECONDS = 300.0


class StepDeadline:
    """One step's deadline, and stop requests another thread may make while it runs."""

    def __init__(
        self, step: str, seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if seconds <= 0:
            raise ValueError(f"a step deadline must be positive, got {seconds}")
        self.step = step
        self.seconds = seconds
        self._clock = clock
        self._ends_at = clock() + seconds
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._on_stop: list[Callable[[], None]] = []

    @property
    def limit(self) -> Limit:
        return Limit.deadline(self.seconds)

    def remaining(self) -> float:
        """Seconds left before the deadline, never negative."""
        return max(0.0, self._ends_at - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self._ends_at

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """Ask the step to stop; whatever waits on the token is woken at once."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            callbacks = list(self._on_stop)
        for callback in callbacks:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the step is stopped (at once if it already was); the undo."""
        with self._lock:
            already = self._stopped.is_set()
            if not already:
                self._on_stop.append(callback)
        if already:
            callback()

        def forget() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._on_stop.remove(callback)

        return forget

    def exceeded(self) -> StepLimitExceeded:
        return StepLimitExceeded(self.step, self.limit)

    def check(self) -> None:
        """Raise ``StepStopped`` or ``StepLimitExceeded`` if the step must not go on."""
        if self.stopped:
            raise StepStopped(self.step)
        if self.expired:
            raise self.exceeded()


@dataclass(frozen=True)
class DeadlinePolicy:
    """How long each step may run: one default, and overrides by step label."""

    default_seconds: float = DEFAULT_STEP_SECONDS
    per_step: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {
            step: seconds
            for step, seconds in {"default": self.default_seconds, **self.per_step}.items()
            if not seconds > 0
        }
        if bad:
            raise ValueError(f"step deadlines must be positive, got {bad}")

    def seconds_for(self, step: str) -> float:
        return self.per_step.get(step, self.default_seconds)

    def start(self, step: str, *, clock: Callable[[], float] = time.monotonic) -> StepDeadline:
        return StepDeadline(step, self.seconds_for(step), clock=clock)


_current: ContextVar[StepDeadline | None] = ContextVar("step_deadline", default=None)


def current_deadline() -> StepDeadline | None:
    """The deadline of the step running in this thread, if any."""
    return _current.get()


def checkpoint() -> None:
    """For long loops inside a step: stop here if the step is past its deadline or stopped."""
    deadline = _current.get()
    if deadline is not None:
        deadline.check()


def run_with_deadline(deadline: StepDeadline, fn: Callable[[], T]) -> T:
    """Run ``fn`` as the step ``deadline`` bounds; a late or stopped run raises, not returns.

    A step that finishes after its deadline is failed all the same: its lease was no longer
    renewed, so another worker may already have taken the document up.
    """
    deadline.check()
    token = _current.set(deadline)
    try:
        result = fn()
    finally:
        _current.reset(token)
    deadline.check()
    return result


class StepDeadlines:
    """The deadline of the step under way for each document a worker process is running.

    Started by the job runner, read by the lease renewer (through ``DeadlineGuardedLeases``),
    and the place where a cancellation finds the step to stop.
    """

    def __init__(
        self, policy: DeadlinePolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or DeadlinePolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[int, StepDeadline] = {}

    @contextlib.contextmanager
    def step(self, document_id: int, step: str) -> Iterator[StepDeadline]:
        """The deadline of ``step`` of the document, registered while the block runs."""
        deadline = self.policy.start(step, clock=self._clock)
        with self._lock:
            self._running[document_id] = deadline
        try:
            yield deadline
        finally:
            with self._lock:
                if self._running.get(document_id) is deadline:
                    del self._running[document_id]

    def run(self, document_id: int, step: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` as ``step`` of the document under the step's deadline."""
        with self.step(document_id, step) as deadline:
            return run_with_deadline(deadline, fn)

    def running(self, document_id: int) -> StepDeadline | None:
        with self._lock:
            return self._running.get(document_id)

    def may_renew(self, document_id: int) -> bool:
        """Whether the document's lease may be renewed: not once its step is late or stopped."""
        deadline = self.running(document_id)
        return deadline is None or not (deadline.expired or deadline.stopped)

    def stop(self, document_id: int) -> bool:
        """Stop the document's running step; whether one was running."""
        deadline = self.running(document_id)
        if deadline is None:
            return False
        deadline.stop()
        return True


class DeadlineGuardedLeases(DocumentLeases):
    """Leases that a worker cannot renew for a document whose step is past its deadline.

    Wraps the store a worker holds leases with: the renewal of a late step's lease is refused
    (as if the lease were lost), so it runs out and the sweeper takes the document up.
    """

    def __init__(self, leases: DocumentLeases, deadlines: StepDeadlines) -> None:
        self._leases = leases
        self._deadlines = deadlines

    def acquire(self, document_id: int, owner: str, seconds: float) -> bool:
        if not self._deadlines.may_renew(document_id):
            return False
        return self._leases.acquire(document_id, owner, seconds)

    def release(self, document_id: int, owner: str) -> None:
        self._leases.release(document_id, owner)

    def expired(self, limit: int = 100) -> list[int]:
        return self._leases.expired(limit)
