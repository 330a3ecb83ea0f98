"""Step progress of a job: the ordered steps, which are done and which is under way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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

    @property
    def completed(self) -> bool:
        return self.state is StepState.COMPLETED


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

    def begin(self, label: str) -> Progress:
        return self._with(label, StepState.ACTIVE)

    def complete(self, label: str) -> Progress:
        return self._with(label, StepState.COMPLETED)

    def fail(self, label: str) -> Progress:
        return self._with(label, StepState.FAILED)

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

    def _with(self, label: str, state: StepState) -> Progress:
        if label not in self.labels:
            raise ValueError(f"unknown step {label!r}; the plan is {list(self.labels)!r}")
        return Progress(tuple(Step(s.label, state) if s.label == label else s for s in self.steps))

    def to_json(self) -> list[dict[str, Any]]:
        """The seed's ProgressIndicator shape, plus the step's state."""
        return [
            {"label": s.label, "completed": s.completed, "state": s.state.value} for s in self.steps
        ]

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
            steps.append(Step(item["label"], StepState(state)))
        return cls(tuple(steps))
