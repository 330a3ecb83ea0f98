"""Process-wide logging: readable text by default, one JSON object per line on request."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from application.tracing import current_traceparent

# Fields our code passes through ``extra=`` that belong in every structured line.
CONTEXT_FIELDS = (
    "document_id",
    "workspace_id",
    "event_id",
    "routing_key",
    "version",
    "queue",
    "reason",
    "worker",
    "transport",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        traceparent = current_traceparent()
        if traceparent is not None:
            # version-trace_id-span_id-flags, as the W3C header writes them.
            _, line["trace_id"], line["span_id"], _ = traceparent.split("-")
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        )
        return f"{text} [{context}]" if context else text


# Libraries whose INFO lines are about their own connections, not about our work.
QUIET_LIBRARIES = ("pika", "alembic", "nats", "redis")
# Libraries that log what they recover from, where we judge the outcome by its result: pypdf
# warns of the damage it reads past; the extraction reports whatever it could not read.
RESULT_JUDGED_LIBRARIES = ("pypdf",)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in RESULT_JUDGED_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.ERROR))
