"""Why something was refused: a kind that callers map to their own terms, and a readable text.

``Result[T, Problem]`` is the one way the core reports an expected failure, from the
lifecycle check and the stores up to the use cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ProblemKind(str, Enum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"
    LIMITED = "limited"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str
    # For ``LIMITED``: the name of the limit, and the whole seconds after which to try again.
    limit: str | None = None
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:
        return text in self.message
