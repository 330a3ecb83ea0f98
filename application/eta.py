"""Estimates how long a processing document still needs, from recent runs of the same steps.

Each step's duration is modelled as a fixed cost plus a cost per byte, fitted robustly over
the latest finished documents (their stored ``step_seconds`` and upload size), so that
every process reading the same database makes the same estimate. A step no recent document
ran has no estimate, and then neither has the document: no number is better than a made-up one.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.ports.timing import StepTimings
from domain.progress import Progress, StepState
from domain.timing import TimedRun


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StepModel:
    """``fixed + per_byte * size`` seconds, fitted from recent runs of one step.

    Fitted robustly (Theil-Sen: the median of the slopes between every two sizes), so that one
    run slowed down by a busy machine moves the estimate no more than any other run does.
    """

    fixed: float
    per_byte: float
    # With a single size seen, the split between fixed and per-byte cost is unknown; the
    # estimate then grows with the square root of the size ratio, between the two extremes
    # (all fixed: a large file announced as fast as a small one; all per byte: a 850 KB file
    # after 1.4 KB ones announced at 40 times its real time).
    seen_size: float = 0.0
    seen_seconds: float = 0.0

    def seconds(self, size_bytes: int) -> float:
        if self.seen_size > 0:
            return self.seen_seconds * math.sqrt(max(size_bytes, 1) / self.seen_size)
        return max(0.0, self.fixed + self.per_byte * size_bytes)

    @classmethod
    def fit(cls, samples: Sequence[tuple[int, float]]) -> StepModel:
        sizes = [float(size) for size, _ in samples]
        seconds = [value for _, value in samples]
        if len(set(sizes)) < 2:
            return cls(0.0, 0.0, max(sizes[0], 1.0), statistics.median(seconds))
        slopes = [
            (seconds[j] - seconds[i]) / (sizes[j] - sizes[i])
            for i in range(len(sizes))
            for j in range(i + 1, len(sizes))
            if sizes[j] != sizes[i]
        ]
        per_byte = statistics.median(slopes)
        if per_byte <= 0:  # larger documents were not slower: size says nothing
            return cls(statistics.median(seconds), 0.0)
        fixed = statistics.median(y - per_byte * x for x, y in zip(sizes, seconds, strict=True))
        if fixed < 0:  # through the origin instead, so that small documents never go negative
            return cls(
                0.0, statistics.median(y / x for x, y in zip(sizes, seconds, strict=True) if x > 0)
            )
        return cls(fixed, per_byte)


class EtaEstimator:
    """The remaining seconds of a document's not yet completed steps, or ``None`` if unknown.

    History is read through ``timings`` at most every ``refresh_seconds`` (ten times as often
    while a step asked about has none yet, so that the first runs count soon); each step keeps
    the latest ``window`` runs. A running step is expected to take the rest of its typical
    duration, but never less than ``floor_seconds`` (it is still running, after all) unless the
    whole step is expected to take less.
    """

    def __init__(
        self,
        timings: StepTimings,
        *,
        now: Callable[[], datetime] = utc_now,
        window: int = 50,
        refresh_seconds: float = 5.0,
        floor_seconds: float = 0.2,
    ) -> None:
        self._timings = timings
        self._now = now
        self._window = window
        self._refresh_seconds = refresh_seconds
        self._floor_seconds = floor_seconds
        self._lock = threading.Lock()
        self._models: dict[str, StepModel] = {}
        self._read_at: datetime | None = None

    def remaining(self, progress: Progress, *, size_bytes: int | None) -> float | None:
        """Seconds left for a document of ``size_bytes`` whose steps stand at ``progress``."""
        if size_bytes is None:
            return None
        size = size_bytes
        models = self._current_models(progress.labels)
        now = self._now()
        total = 0.0
        for step in progress.steps:
            if step.completed:
                continue
            model = models.get(step.label)
            if model is None:
                return None
            expected = model.seconds(size)
            if step.state is StepState.ACTIVE and step.started_at is not None:
                elapsed = (now - step.started_at).total_seconds()
                # Overdue but still running: a little is left, never nothing or less.
                expected = max(min(self._floor_seconds, expected), expected - elapsed)
            total += expected
        return round(total, 3)

    def _current_models(self, labels: Sequence[str]) -> dict[str, StepModel]:
        now = self._now()
        with self._lock:
            missing = any(label not in self._models for label in labels)
            age = None if self._read_at is None else (now - self._read_at).total_seconds()
            refresh = self._refresh_seconds / 10 if missing else self._refresh_seconds
            if age is None or age >= refresh:
                self._models = _models_of(self._timings.recent(self._window * 4), self._window)
                self._read_at = now
            return self._models


def _models_of(runs: Sequence[TimedRun], window: int) -> dict[str, StepModel]:
    samples: dict[str, list[tuple[int, float]]] = {}
    for run in runs:  # newest first, so each step keeps its latest ``window`` runs
        for label, seconds in run.step_seconds.items():
            kept = samples.setdefault(label, [])
            if len(kept) < window:
                kept.append((run.size_bytes, seconds))
    return {label: StepModel.fit(found) for label, found in samples.items()}
