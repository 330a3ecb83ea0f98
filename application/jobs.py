"""The job runner: takes a document through named steps, reporting each as progress.

A worker author writes only the steps. The runner marks the document ``processing``, reports
every step start and finish as a versioned status change, and ends it ``ready`` with
``chunk_count`` and ``metadata`` — or ``failed`` with a readable error naming the step.

A run may cover only part of a document's plan (one pipeline stage of several): the
document becomes ``ready`` only when every step of its plan is completed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.deadlines import StepDeadlines
from application.eta import EtaEstimator, utc_now
from application.metrics import Metrics, NoMetrics
from application.status_service import StatusService
from application.tracing import NoTracer, Tracer
from domain.changes import DocumentStatusChange
from domain.entities import Document
from domain.limits import StepLimitExceeded, StepStopped
from domain.ports import StatusRepository
from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus
from domain.timing import ETA_KEY, SIZE_KEY, size_of

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step could not complete for a reason the user should read (bad file, bad config)."""


@dataclass
class JobContext:
    """What the steps of one run share: the document, values passed along, the outcome."""

    document: Document
    values: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    chunk_count: int | None = None


@dataclass(frozen=True)
class JobStep:
    label: str
    run: Callable[[JobContext], None]


@dataclass(frozen=True)
class JobOutcome:
    document: Document
    context: JobContext
    skipped: bool = False


TERMINAL = frozenset({DocumentProcessingStatus.READY, DocumentProcessingStatus.FAILED})


class JobRunner:
    """Runs a document through steps via ``StatusService``, so every change is stored and pushed."""

    def __init__(
        self,
        status_service: StatusService,
        *,
        clock: Callable[[], float] = time.perf_counter,
        metrics: Metrics | None = None,
        deadlines: StepDeadlines | None = None,
        tracer: Tracer | None = None,
        actor: str | None = None,
        estimator: EtaEstimator | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._status = status_service
        # Who the status history names for this runner's changes: the worker's identity.
        self._actor = actor
        self._clock = clock
        # Wall-clock time for the steps' recorded start and end; ``clock`` measures durations.
        self._now = now
        self._estimator = estimator
        self._metrics = metrics or NoMetrics()
        # Every step runs under its deadline; a stop request (cancel) reaches it through here.
        self.deadlines = deadlines or StepDeadlines()
        self._tracer = tracer or NoTracer()

    @property
    def repository(self) -> StatusRepository:
        return self._status.repository

    def run(
        self,
        document_id: int,
        steps: Sequence[JobStep],
        *,
        values: Mapping[str, Any] | None = None,
    ) -> Result[JobOutcome, Problem]:
        """Run ``steps``; ``Err`` only when the document cannot be worked on at all.

        A document already ``ready`` or ``failed`` is left alone (a redelivered request).
        Every write names the version it expects, so a run whose document was taken over by
        another worker stops at its next write instead of overwriting newer state.
        """
        document = self._status.repository.get_document(document_id)
        if document is None:
            return Err(Problem(ProblemKind.NOT_FOUND, f"document {document_id} not found"))
        context = JobContext(document=document, values=dict(values or {}))
        if document.processing_status in TERMINAL:
            return Ok(JobOutcome(document, context, skipped=True))
        missing = [s.label for s in steps if s.label not in document.progress.labels]
        if missing:
            return Err(
                Problem(
                    ProblemKind.INVALID,
                    f"document {document_id}: steps {missing} are not in its plan",
                )
            )
        if document.progress.all_completed(s.label for s in steps):
            # A redelivered request whose steps were already recorded: only the hand-off
            # after it may be missing, and that is the caller's to repeat.
            return Ok(JobOutcome(document, context, skipped=True))

        # A pending document starts a new attempt (first upload, or a retry): nothing an
        # earlier attempt recorded (its counts, timings, recoveries) carries over, only what
        # the upload recorded (its size).
        fresh = document.processing_status is DocumentProcessingStatus.PENDING
        carried = {
            key: value
            for key, value in document.metadata.items()
            if key != ETA_KEY and (key == SIZE_KEY or not fresh)
        }
        progress = document.progress
        seconds = dict(carried.get("step_seconds", {}))
        for number, step in enumerate(steps):
            # A span per step, around its start and its run: the events it causes are its own.
            with self._tracer.span(step.label, attributes={"document_id": document_id}):
                progress = progress.begin(step.label, at=self._now())
                starting_afresh = fresh and number == 0
                moved = self._move(
                    context,
                    DocumentStatusChange(
                        document_id=document_id,
                        status=DocumentProcessingStatus.PROCESSING,
                        progress=progress,
                        chunk_count=0 if starting_afresh else None,
                        metadata=self._with_eta(
                            carried if starting_afresh else context.document.metadata, progress
                        ),
                        expected_version=context.document.version,
                        actor=self._actor,
                        step=step.label,
                    ),
                )
                if isinstance(moved, Err):
                    return moved
                started = self._clock()
                try:
                    self.deadlines.run(
                        document_id, step.label, functools.partial(step.run, context)
                    )
                except Exception as exc:  # a step's failure must end as a status, never a crash
                    elapsed = self._clock() - started
                    self._metrics.step_finished(step.label, elapsed, failed=True)
                    failed = progress.fail(step.label, at=self._now())
                    return self._fail(context, failed, step.label, exc, elapsed)
                elapsed = self._clock() - started
                self._metrics.step_finished(step.label, elapsed, failed=False)
                seconds[step.label] = round(elapsed, 6)
                progress = progress.complete(step.label, at=self._now())

        metadata = {
            **carried,
            **context.metadata,
            "step_seconds": seconds,
            "duration_seconds": round(sum(seconds.values()), 6),
        }
        # The plan decides when a document is done: a stage that completes the last step
        # of the plan makes it ready; an earlier stage leaves it processing for the next.
        target = (
            DocumentProcessingStatus.READY
            if progress.is_complete
            else DocumentProcessingStatus.PROCESSING
        )
        if target is DocumentProcessingStatus.PROCESSING:
            metadata = self._with_eta(metadata, progress)
        done = self._move(
            context,
            DocumentStatusChange(
                document_id=document_id,
                status=target,
                progress=progress,
                chunk_count=context.chunk_count,
                metadata=metadata,
                expected_version=context.document.version,
                actor=self._actor,
                step=steps[-1].label if steps else None,
                step_seconds=seconds.get(steps[-1].label) if steps else None,
            ),
        )
        if isinstance(done, Err):
            return done
        return Ok(JobOutcome(context.document, context))

    def _with_eta(self, metadata: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
        """``metadata`` with the estimate of the seconds left once steps stand at ``progress``.

        Made when the change is, and stored with it, so that the event sent now, the outbox's
        copy and the API's answer after a reload all carry the same estimate.
        """
        written = {key: value for key, value in metadata.items() if key != ETA_KEY}
        if self._estimator is None:
            return written
        eta = self._estimator.remaining(progress, size_bytes=size_of(written))
        if eta is not None:
            written[ETA_KEY] = eta
        return written

    def _fail(
        self,
        context: JobContext,
        progress: Progress,
        label: str,
        exc: Exception,
        elapsed: float,
    ) -> Result[JobOutcome, Problem]:
        if isinstance(exc, StepLimitExceeded) and exc.step == label:
            reason = f"exceeded its {exc.limit}"
        elif isinstance(exc, StepFailed | StepLimitExceeded | StepStopped):
            reason = str(exc)
        else:
            log.exception("step %r crashed", label, extra={"document_id": context.document.id})
            # The user reads this: one line, not the whole text of a driver's error.
            lines = str(exc).strip().splitlines()
            detail = lines[0][:200] if lines else ""
            reason = f"unexpected error ({type(exc).__name__}: {detail})"
        failed = self._move(
            context,
            DocumentStatusChange(
                document_id=context.document.id,
                status=DocumentProcessingStatus.FAILED,
                progress=progress,
                error=f"{label} failed: {reason}",
                expected_version=context.document.version,
                actor=self._actor,
                step=label,
                step_seconds=round(elapsed, 6),
            ),
        )
        if isinstance(failed, Err):
            return failed
        return Ok(JobOutcome(context.document, context))

    def _move(self, context: JobContext, change: DocumentStatusChange) -> Result[Document, Problem]:
        """Store and announce ``change``; on success the run goes on from the changed document."""
        moved = self._status.change_document_status(change)
        if isinstance(moved, Ok):
            context.document = moved.value
        return moved
