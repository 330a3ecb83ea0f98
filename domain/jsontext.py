"""JSON and text from outside, parsed with bounds: the shared first step of every decoder."""

from __future__ import annotations

import json
from typing import Any

# More digits than any id, version or count can have; converting huge ones costs quadratic time.
MAX_INTEGER_DIGITS = 20


class JsonRefused(ValueError):
    """Bytes that are not bounded JSON: unparsable, too deep, or holding implausible numbers."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits is implausible")
    return int(text)


def _no_constant(text: str) -> object:
    raise ValueError(f"{text} is not a JSON number")


def parse_json(body: bytes | str) -> Any:
    """The JSON value of ``body``; ``JsonRefused`` says why not (never another exception)."""
    try:
        return json.loads(body, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise JsonRefused("it nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused(str(exc)) from None


def is_utf8(value: str) -> bool:
    """Whether ``value`` can be sent on as UTF-8: it holds no lone surrogate."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_text(value: str) -> bool:
    """Whether ``value`` can be stored by every database and sent on: UTF-8 without NUL."""
    return "\x00" not in value and is_utf8(value)
