"""The operator's console: dead letters, live workers, stuck work and per-stage rates.

Every operator action (requeue, discard) is recorded in the ``OperatorLog`` with who did it.
Requeueing is safe to repeat: the stage handlers skip the steps a document already has, so a
request whose document is already ``ready`` changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from application.worker import Worker
from domain.ports import (
    Backlog,
    DeadLetter,
    DeadLetters,
    OperatorAction,
    OperatorLog,
    QueueBacklogs,
    StuckDocument,
    StuckWork,
    WorkerBeat,
    WorkerRegistry,
)
from domain.problems import Problem, ProblemKind
from domain.result import Err, Ok, Result

log = logging.getLogger(__name__)
R = TypeVar("R")

SWEEPER = "sweeper"
RATE_WINDOW_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class StuckReport:
    """Documents without a live lease (or about to lose it), and the sweeper's recoveries."""

    documents: list[StuckDocument]
    recoveries: list[OperatorAction]


@dataclass(frozen=True, slots=True)
class StageRates:
    """What one stage's live workers did over the last ``window_seconds``."""

    stage: str
    workers: int
    processed: int
    failed: int
    window_seconds: float

    @property
    def per_minute(self) -> float:
        return 60.0 * self.processed / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def failure_rate(self) -> float:
        """Failed over all handled, 0 when nothing was handled."""
        handled = self.processed + self.failed
        return self.failed / handled if handled else 0.0


@dataclass(frozen=True, slots=True)
class StageFigures:
    """One row of the console's live figures: a work queue's backlog and dead letters, the
    rates of the workers of that stage, or both.

    ``backlog`` is ``None`` for a row of workers that take several queues (``worker all``),
    or when the transport could not be read; ``rates`` is ``None`` while no worker is live.
    """

    stage: str
    backlog: Backlog | None
    rates: StageRates | None
    dead_letters: int | None


class StageRateSampler:
    """Turns the running totals of heartbeats into rates over a sliding window.

    Each worker's totals are kept per sample time; a worker's contribution is its latest
    totals minus its oldest within the window, so a worker that dies or starts mid-window
    never counts negative or its whole history.
    """

    def __init__(
        self,
        window_seconds: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}

    def rates(self, beats: Sequence[WorkerBeat]) -> list[StageRates]:
        now = self._clock()
        totals: dict[str, list[float]] = {}
        with self._lock:
            for beat in beats:
                samples = self._samples.setdefault(beat.worker_id, deque())
                samples.append((now, beat.processed, beat.failed))
                while samples and samples[0][0] < now - self._window:
                    samples.popleft()
                first_at, first_processed, first_failed = samples[0]
                stage = totals.setdefault(beat.stage, [0, 0, 0, 0.0])
                stage[0] += 1
                stage[1] += beat.processed - first_processed
                stage[2] += beat.failed - first_failed
                stage[3] = max(stage[3], now - first_at)
            seen = {beat.worker_id for beat in beats}
            for gone in set(self._samples) - seen:
                del self._samples[gone]
        return [
            StageRates(
                stage=stage,
                workers=int(workers),
                processed=int(processed),
                failed=int(failed),
                window_seconds=round(span, 3),
            )
            for stage, (workers, processed, failed, span) in sorted(totals.items())
        ]


class OperatorConsole:
    """The use cases of the operator's console, over the transport's dead letters and the
    registry, log and stuck-work views of the store."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        queues: Sequence[str],
        registry: WorkerRegistry,
        log: OperatorLog,
        stuck: StuckWork,
        *,
        heartbeat_seconds: float,
        sampler: StageRateSampler | None = None,
        backlogs: QueueBacklogs | None = None,
    ) -> None:
        self._backlogs = backlogs
        self._letters = dead_letters
        self._queues = tuple(queues)
        self._registry = registry
        self._log = log
        self._stuck = stuck
        self._heartbeat_seconds = heartbeat_seconds
        self._sampler = sampler or StageRateSampler()

    @property
    def queues(self) -> tuple[str, ...]:
        return self._queues

    def dead_letters(
        self, queue: str | None = None
    ) -> Result[dict[str, list[DeadLetter]], Problem]:
        """The dead letters of ``queue`` (or of every queue), oldest first."""
        chosen = self._chosen(queue)
        if isinstance(chosen, Err):
            return chosen
        return Ok({name: self._letters.of(name) for name in chosen.value})

    def requeue(self, queue: str, letter_id: str, *, actor: str) -> Result[bool, Problem]:
        """Deliver one dead letter afresh; ``NOT_FOUND`` when it is not (or no longer) there."""
        return self._settle("requeue", queue, letter_id, actor, self._letters.requeue)

    def discard(self, queue: str, letter_id: str, *, actor: str) -> Result[bool, Problem]:
        """Remove one dead letter for good; ``NOT_FOUND`` when it is not there."""
        return self._settle("discard", queue, letter_id, actor, self._letters.discard)

    def requeue_all(self, queue: str, *, actor: str) -> Result[int, Problem]:
        """Deliver every dead letter of ``queue`` afresh; how many went."""
        chosen = self._chosen(queue)
        if isinstance(chosen, Err):
            return chosen
        sent = sum(
            1
            for letter in self._letters.of(queue)
            if self._letters.requeue(queue, letter.letter_id)
        )
        self._log.record(
            OperatorAction(
                actor=actor, action="requeue-all", target=queue, outcome=f"{sent} requeued"
            )
        )
        return Ok(sent)

    def workers(self) -> list[WorkerBeat]:
        """The workers seen within two heartbeat intervals."""
        return self._registry.live(2 * self._heartbeat_seconds)

    def stage_rates(self) -> list[StageRates]:
        """Throughput and failures per stage over the last minutes, from the heartbeats."""
        return self._sampler.rates(self.workers())

    def backlogs(self) -> list[Backlog]:
        """How many requests wait in each work queue and how old the oldest is."""
        if self._backlogs is None:
            return []
        return [self._backlogs.of(name) for name in self._queues]

    def figures(self) -> list[StageFigures]:
        """Per stage: the queue's backlog and dead letters and the workers' rates, at once.

        A queue the transport fails to read shows no backlog and no dead-letter count rather
        than hiding every other figure.
        """
        rates = {r.stage: r for r in self.stage_rates()}
        rows: list[StageFigures] = []
        for name in self._queues:
            backlogs = self._backlogs
            backlog = None if backlogs is None else _read(name, "backlog", backlogs.of)
            letters = _read(name, "dead letters", lambda queue: len(self._letters.of(queue)))
            rows.append(StageFigures(name, backlog, rates.pop(name, None), letters))
        rows += [StageFigures(stage, None, r, None) for stage, r in sorted(rates.items())]
        return rows

    def stuck(self, *, expiring_within: float = 10.0, limit: int = 100) -> StuckReport:
        return StuckReport(
            documents=self._stuck.find(expiring_within=expiring_within, limit=limit),
            recoveries=self._log.recent(limit=20, actor=SWEEPER),
        )

    def actions(self, limit: int = 100) -> list[OperatorAction]:
        """The latest operator actions, newest first."""
        return self._log.recent(limit)

    def _chosen(self, queue: str | None) -> Result[tuple[str, ...], Problem]:
        if queue is None:
            return Ok(self._queues)
        if queue not in self._queues:
            return Err(
                Problem(
                    ProblemKind.NOT_FOUND,
                    f"no work queue {queue!r}; choose from {', '.join(self._queues)}",
                )
            )
        return Ok((queue,))

    def _settle(
        self,
        action: str,
        queue: str,
        letter_id: str,
        actor: str,
        settle: Callable[[str, str], bool],
    ) -> Result[bool, Problem]:
        chosen = self._chosen(queue)
        if isinstance(chosen, Err):
            return chosen
        done = settle(queue, letter_id)
        self._log.record(
            OperatorAction(
                actor=actor,
                action=action,
                target=f"{queue}/{letter_id}",
                outcome="done" if done else "not found",
            )
        )
        if not done:
            return Err(
                Problem(ProblemKind.NOT_FOUND, f"no dead letter {letter_id!r} in queue {queue!r}")
            )
        return Ok(True)


def _read(queue: str, what: str, read: Callable[[str], R]) -> R | None:
    try:
        return read(queue)
    except Exception:  # a broker that is down must not blank the rest of the console
        log.warning("could not read the %s of queue %s", what, queue, exc_info=True)
        return None


class WorkerPresence:
    """A worker process's heartbeat in the registry: its stage, host, pid, the documents
    under way, and how many requests its consumers handled and failed."""

    def __init__(
        self,
        registry: WorkerRegistry,
        *,
        worker_id: str,
        stage: str,
        host: str,
        pid: int,
    ) -> None:
        self._registry = registry
        self._worker_id = worker_id
        self._stage = stage
        self._host = host
        self._pid = pid
        self._workers: list[Worker] = []

    def track(self, worker: Worker) -> None:
        self._workers.append(worker)

    def current(self) -> WorkerBeat:
        under_way = [getattr(w.current_event, "document_id", None) for w in self._workers]
        return WorkerBeat(
            worker_id=self._worker_id,
            stage=self._stage,
            host=self._host,
            pid=self._pid,
            current_documents=tuple(sorted(d for d in under_way if isinstance(d, int))),
            processed=sum(w.handled for w in self._workers),
            failed=sum(w.failed for w in self._workers),
        )

    def beat(self) -> None:
        self._registry.beat(self.current())

    def leave(self) -> None:
        self._registry.forget(self._worker_id)
