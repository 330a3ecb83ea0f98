"""How the operator's console looks as JSON: in the admin API and in ``insighthub admin``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.operations import StageFigures, StageRates, StuckReport
from domain.ports import DeadLetter, OperatorAction, StuckDocument, WorkerBeat

ENTITY_FIELDS = ("document_id", "workspace_id", "user_id")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter with the entity its request is about; the body itself is not shown."""
    event = letter.event
    entity = {
        name: value
        for name in ENTITY_FIELDS
        if isinstance(value := getattr(event, name, None), int)
    }
    return {
        "letter_id": letter.letter_id,
        "queue": letter.queue,
        "routing_key": letter.routing_key,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "first_failed_at": _iso(letter.first_failed_at),
        "last_failed_at": _iso(letter.last_failed_at),
        "entity": entity,
        "event_id": event.event_id if event is not None else None,
        "malformed": event is None,
    }


def worker_json(beat: WorkerBeat) -> dict[str, Any]:
    return {
        "worker_id": beat.worker_id,
        "stage": beat.stage,
        "host": beat.host,
        "pid": beat.pid,
        "current_documents": list(beat.current_documents),
        "processed": beat.processed,
        "failed": beat.failed,
        "seen_at": _iso(beat.seen_at),
    }


def action_json(action: OperatorAction) -> dict[str, Any]:
    return {
        "actor": action.actor,
        "action": action.action,
        "target": action.target,
        "outcome": action.outcome,
        "at": _iso(action.at),
    }


def stuck_document_json(document: StuckDocument) -> dict[str, Any]:
    return {
        "document_id": document.document_id,
        "status": document.status,
        "owner": document.owner,
        "seconds_left": document.seconds_left,
    }


def stuck_json(report: StuckReport) -> dict[str, Any]:
    return {
        "documents": [stuck_document_json(d) for d in report.documents],
        "recoveries": [action_json(a) for a in report.recoveries],
    }


def stage_json(rates: StageRates) -> dict[str, Any]:
    return {
        "stage": rates.stage,
        "workers": rates.workers,
        "processed": rates.processed,
        "failed": rates.failed,
        "window_seconds": rates.window_seconds,
        "per_minute": round(rates.per_minute, 3),
        "failure_rate": round(rates.failure_rate, 4),
    }


def figures_json(figures: StageFigures) -> dict[str, Any]:
    """One stage's live figures: its queue's backlog and dead letters, its workers' rates."""
    backlog, rates = figures.backlog, figures.rates
    age = None if backlog is None else backlog.oldest_age_seconds
    return {
        "stage": figures.stage,
        "depth": None if backlog is None else backlog.waiting,
        "oldest_age_seconds": None if age is None else round(age, 3),
        "unacknowledged": None if backlog is None else backlog.unacknowledged,
        "dead_letters": figures.dead_letters,
        "workers": 0 if rates is None else rates.workers,
        "processed": 0 if rates is None else rates.processed,
        "failed": 0 if rates is None else rates.failed,
        "per_minute": 0.0 if rates is None else round(rates.per_minute, 3),
        "failure_rate": 0.0 if rates is None else round(rates.failure_rate, 4),
        "window_seconds": 0.0 if rates is None else rates.window_seconds,
    }


_COUNT_OR_NULL = {"type": ["integer", "null"]}
# The JSON Schema of ``figures_json``: in the OpenAPI and the AsyncAPI documents alike.
STAGE_FIGURES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": sorted(
        [
            "stage",
            "depth",
            "oldest_age_seconds",
            "unacknowledged",
            "dead_letters",
            "workers",
            "processed",
            "failed",
            "per_minute",
            "failure_rate",
            "window_seconds",
        ]
    ),
    "additionalProperties": False,
    "properties": {
        "stage": {"type": "string", "description": "A work queue, or the stages of a worker"},
        "depth": {**_COUNT_OR_NULL, "description": "Requests waiting, not yet delivered"},
        "oldest_age_seconds": {
            "type": ["number", "null"],
            "description": "How long the oldest waiting request has waited; null when none "
            "waits or the transport cannot tell (RabbitMQ)",
        },
        "unacknowledged": {
            **_COUNT_OR_NULL,
            "description": "Delivered, not yet settled; null where the transport does not tell",
        },
        "dead_letters": _COUNT_OR_NULL,
        "workers": {"type": "integer"},
        "processed": {"type": "integer", "description": "Within the window"},
        "failed": {"type": "integer", "description": "Within the window"},
        "per_minute": {"type": "number"},
        "failure_rate": {"type": "number", "description": "failed / (processed + failed)"},
        "window_seconds": {"type": "number"},
    },
}
