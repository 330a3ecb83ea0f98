"""Status values and the one declarative table of the moves allowed between them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from domain.problems import Problem, ProblemKind
from domain.result import Err, Ok, Result


class DocumentProcessingStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class WorkspaceStatus(str, Enum):
    PROVISIONING = "provisioning"
    READY = "ready"
    ERROR = "error"


S = TypeVar("S", DocumentProcessingStatus, WorkspaceStatus)


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """The moves a status may make: ordinary ones, and those only an explicit retry may make."""

    entity: str
    moves: Mapping[S, frozenset[S]]
    retries: Mapping[S, frozenset[S]]

    def allows(self, current: S, target: S, *, retry: bool = False) -> bool:
        table = self.retries if retry else self.moves
        return target in table.get(current, frozenset())

    def check(self, current: S, target: S, *, retry: bool = False) -> Result[None, Problem]:
        if self.allows(current, target, retry=retry):
            return Ok(None)
        reason = self.describe_rejection(current, target, retry=retry)
        return Err(Problem(ProblemKind.CONFLICT, reason))

    def sources(self, target: S, *, retry: bool = False) -> frozenset[S]:
        """The statuses ``target`` may be reached from: lets a store check and write at once."""
        table = self.retries if retry else self.moves
        return frozenset(source for source, targets in table.items() if target in targets)

    def describe_rejection(self, current: S, target: S, *, retry: bool = False) -> str:
        how = "by retry" if retry else "directly"
        return (
            f"illegal transition: {self.entity} cannot go from "
            f"'{current.value}' to '{target.value}' {how}"
        )


_D = DocumentProcessingStatus
_W = WorkspaceStatus

DOCUMENT_LIFECYCLE: Lifecycle[DocumentProcessingStatus] = Lifecycle(
    entity="document",
    moves={
        _D.PENDING: frozenset({_D.PROCESSING, _D.FAILED}),
        # processing -> processing is a progress report (a step started or finished).
        _D.PROCESSING: frozenset({_D.PROCESSING, _D.READY, _D.FAILED}),
    },
    retries={
        _D.READY: frozenset({_D.PENDING}),
        _D.FAILED: frozenset({_D.PENDING}),
    },
)

WORKSPACE_LIFECYCLE: Lifecycle[WorkspaceStatus] = Lifecycle(
    entity="workspace",
    moves={_W.PROVISIONING: frozenset({_W.READY, _W.ERROR})},
    retries={_W.ERROR: frozenset({_W.PROVISIONING})},
)
