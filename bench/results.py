"""One measured figure, with what it is compared against and the target it must meet."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """A line of the results table."""

    benchmark: str
    case: str
    metric: str
    value: float | None = None
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    target_ratio: float | None = None
    lower_is_better: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        if self.target_ratio is None:
            return None
        measured = self.ratio
        if measured is None:
            return None
        if self.lower_is_better:
            return measured <= self.target_ratio
        return measured >= self.target_ratio

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def unavailable(benchmark: str, case: str, metric: str, why: str) -> Row:
    """A row for a case that could not run, saying why."""
    return Row(benchmark, case, metric, note=f"not measured: {why}")


def first_line(exc: BaseException) -> str:
    """What a failed run says of itself, one line long."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
