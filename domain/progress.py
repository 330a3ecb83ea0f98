"""Step progress of a job: the ordered steps, which are done and which is under way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any


class StepState(str, Enum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    state: StepState = StepState.PENDING
    # When the runner reported the step begun and finished (completed or failed), if it did.
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.state is StepState.COMPLETED

    @property
    def seconds(self) -> float | None:
        """How long the step ran, once it has both timestamps."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Progress:
    """An immutable step list; every change returns a new value."""

    steps: tuple[Step, ...] = ()

    @classmethod
    def plan(cls, labels: Iterable[str]) -> Progress:
        labels = tuple(labels)
        if len(set(labels)) != len(labels):
            raise ValueError(f"step labels must be unique: {labels!r}")
        return cls(tuple(Step(label) for label in labels))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(step.label for step in self.steps)

    @property
    def current(self) -> str | None:
        return next((s.label for s in self.steps if s.state is StepState.ACTIVE), None)

    @property
    def completed_count(self) -> int:
        return sum(1 for step in self.steps if step.completed)

    @property
    def is_complete(self) -> bool:
        return bool(self.steps) and all(step.completed for step in self.steps)

    def step(self, label: str) -> Step:
        """The step named ``label``; ``ValueError`` when the plan has none."""
        for step in self.steps:
            if step.label == label:
                return step
        raise ValueError(f"unknown step {label!r}; the plan is {list(self.labels)!r}")

    def begin(self, label: str, *, at: datetime | None = None) -> Progress:
        """``label`` is under way, since ``at`` when given; a new start forgets an old end."""
        old = self.step(label)
        return self._put(replace(old, state=StepState.ACTIVE, started_at=at, finished_at=None))

    def complete(self, label: str, *, at: datetime | None = None) -> Progress:
        return self._end(label, StepState.COMPLETED, at)

    def fail(self, label: str, *, at: datetime | None = None) -> Progress:
        return self._end(label, StepState.FAILED, at)

    def interrupt(self) -> Progress:
        """Steps that were under way go back to pending (their worker is gone)."""
        return Progress(
            tuple(Step(s.label) if s.state is StepState.ACTIVE else s for s in self.steps)
        )

    def all_completed(self, labels: Iterable[str]) -> bool:
        done = {s.label for s in self.steps if s.completed}
        return all(label in done for label in labels)

    def first_incomplete(self) -> str | None:
        return next((s.label for s in self.steps if not s.completed), None)

    def reset(self) -> Progress:
        return Progress(tuple(Step(step.label) for step in self.steps))

    def _end(self, label: str, state: StepState, at: datetime | None) -> Progress:
        old = self.step(label)
        return self._put(replace(old, state=state, finished_at=at or old.finished_at))

    def _put(self, new: Step) -> Progress:
        return Progress(tuple(new if s.label == new.label else s for s in self.steps))

    def to_json(self) -> list[dict[str, Any]]:
        """The seed's ProgressIndicator shape, plus the step's state and, once known, its times."""
        return [_step_json(s) for s in self.steps]

    @classmethod
    def from_json(cls, raw: object) -> Progress:
        if raw is None:
            return cls()
        if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
            raise ValueError(f"progress must be a list of steps, got {type(raw).__name__}")
        steps = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("label"), str):
                raise ValueError(f"a progress step needs a string 'label': {item!r}")
            state = item.get("state")
            if state is None:
                state = StepState.COMPLETED if item.get("completed") else StepState.PENDING
            steps.append(
                Step(
                    item["label"],
                    StepState(state),
                    started_at=_timestamp(item, "started_at"),
                    finished_at=_timestamp(item, "finished_at"),
                )
            )
        return cls(tuple(steps))


def _step_json(step: Step) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "label": step.label,
        "completed": step.completed,
        "state": step.state.value,
    }
    # Absent rather than null while unknown: progress written before timestamps looks the same.
    if step.started_at is not None:
        shown["started_at"] = step.started_at.isoformat()
    if step.finished_at is not None:
        shown["finished_at"] = step.finished_at.isoformat()
    return shown


def _timestamp(item: dict[str, Any], key: str) -> datetime | None:
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"a progress step's {key!r} must be an ISO timestamp: {raw!r}")
    return datetime.fromisoformat(raw)
