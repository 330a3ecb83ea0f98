"""Keeps bearer tokens out of every log line (the WebSocket carries one in its query)."""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(r"(token=|bearer\s+)[^\s&\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRETS.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites a record whose message would show a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def redact_all_handlers() -> None:
    """Attach the filter to every handler of the root logger, where all records end up."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())
