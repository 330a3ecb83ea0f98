"""The status history of an entity: one entry per change, kept with the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.entities import Document, Workspace

# What a change made on behalf of a user (through the API or its cancel button) records as
# its actor; workers record their own identity.
USER_ACTOR = "user"
API_ACTOR = "api"
# The deployment's operator, acting from the command line.
OPERATOR_ACTOR = "operator"


class HistoryEntity(str, Enum):
    DOCUMENT = "document"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusHistoryEntry:
    """One status change (or the creation) of an entity, as it was stored.

    ``from_status`` is ``None`` for the creation. ``step`` is the step the change started or
    ended, ``step_seconds`` how long an ended step ran; ``error`` is the document's error or
    the workspace's message after the change.
    """

    entity: HistoryEntity
    entity_id: int
    at: datetime
    from_status: str | None
    to_status: str
    version: int
    position: int
    actor: str | None = None
    step: str | None = None
    step_seconds: float | None = None
    error: str | None = None


def recorded_status(entity: Document | Workspace) -> tuple[HistoryEntity, str, str | None]:
    """What the history keeps of ``entity``'s state: its kind, status and error or message."""
    if isinstance(entity, Document):
        return HistoryEntity.DOCUMENT, entity.processing_status.value, entity.processing_error
    return HistoryEntity.WORKSPACE, entity.status.value, entity.status_message
