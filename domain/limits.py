"""Limits a processing step runs under, and the errors that name the one a step went past."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """One bound on a step: what is bounded, its value and unit ("CPU-time limit of 30 s")."""

    name: str
    value: float
    unit: str

    def __str__(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.name} of {value:,} {self.unit}"

    @classmethod
    def deadline(cls, seconds: float) -> Limit:
        return cls("deadline", seconds, "s")

    @classmethod
    def wall_clock(cls, seconds: float) -> Limit:
        return cls("time limit", seconds, "s")

    @classmethod
    def cpu_time(cls, seconds: float) -> Limit:
        return cls("CPU-time limit", seconds, "s")

    @classmethod
    def memory(cls, megabytes: int) -> Limit:
        return cls("memory limit", megabytes, "MB")

    @classmethod
    def pages(cls, pages: int) -> Limit:
        return cls("page limit", pages, "pages")

    @classmethod
    def characters(cls, characters: int) -> Limit:
        return cls("text limit", characters, "characters")


class StepLimitExceeded(Exception):
    """A step went past one of its limits; the message, meant for the user, names both."""

    def __init__(self, step: str, limit: Limit) -> None:
        super().__init__(f"{step} exceeded its {limit}")
        self.step = step
        self.limit = limit

    def __reduce__(self) -> tuple[type[StepLimitExceeded], tuple[str, Limit]]:
        # Raised in a child process and re-raised in the parent: it must survive pickling.
        return (type(self), (self.step, self.limit))


class StepStopped(Exception):
    """A step was stopped on request (a cancellation) before it finished."""

    def __init__(self, step: str) -> None:
        super().__init__(f"{step} was stopped on request")
        self.step = step

    def __reduce__(self) -> tuple[type[StepStopped], tuple[str]]:
        return (type(self), (self.step,))
