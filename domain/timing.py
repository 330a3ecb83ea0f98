"""What the core records about how long work takes, and the estimate it announces.

A document's metadata holds its upload size (``size_bytes``) and, while it is processing,
the estimate of its remaining seconds made when its latest step began (``eta_seconds``).
The estimate is stored with the change so that every reader — the event sent directly, the
outbox's copy of it, the API after a reload — announces the same number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from domain.entities import Document
from domain.progress import Progress
from domain.status import DocumentProcessingStatus

SIZE_KEY = "size_bytes"
ETA_KEY = "eta_seconds"


@dataclass(frozen=True, slots=True)
class TimedRun:
    """One finished document: its size and the seconds each of its steps took."""

    size_bytes: int
    step_seconds: Mapping[str, float]

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], progress: Progress | None = None
    ) -> TimedRun | None:
        """The run recorded in a finished document; ``None`` when it lacks one.

        When its progress has every step's times, a step counts from the end of the one
        before it: the wait for the next stage's worker is part of what the user waits for.
        Otherwise the step's own ``step_seconds`` are used.
        """
        size = metadata.get(SIZE_KEY)
        if not _is_number(size):
            return None
        spans = _spans(progress) if progress is not None else None
        if spans is not None:
            return cls(int(size), spans)
        seconds = metadata.get("step_seconds")
        if not isinstance(seconds, Mapping):
            return None
        steps = {
            label: float(value)
            for label, value in seconds.items()
            if isinstance(label, str) and _is_number(value)
        }
        return cls(int(size), steps) if steps else None


def _spans(progress: Progress) -> dict[str, float] | None:
    spans: dict[str, float] = {}
    previous_end: datetime | None = None
    for step in progress.steps:
        if step.started_at is None or step.finished_at is None:
            return None
        start = previous_end if previous_end is not None else step.started_at
        spans[step.label] = max(0.0, (step.finished_at - start).total_seconds())
        previous_end = step.finished_at
    return spans or None


def size_of(metadata: Mapping[str, Any]) -> int | None:
    """The upload size recorded in a document's metadata, if it was."""
    size = metadata.get(SIZE_KEY)
    return int(size) if _is_number(size) and float(size).is_integer() else None


def announced_eta(document: Document) -> float | None:
    """The remaining seconds announced for ``document``: only while it is processing."""
    if document.processing_status is not DocumentProcessingStatus.PROCESSING:
        return None
    eta = document.metadata.get(ETA_KEY)
    return float(eta) if _is_number(eta) else None


def _is_number(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
