"""Values a request brings (path ids, the bearer token, JSON bodies), parsed totally.

Whatever a client sends, each parser returns a usable value or raises ``ApiError`` with a
4xx status, a stable code and the name of the field it refuses; none lets a stray exception
(an int too long to convert, a nesting too deep to parse, a string that is not text) through
to become a 500.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from domain.jsontext import JsonRefused, is_text, parse_json
from entrypoints.server.errors import ApiError

MAX_JSON_BODY_BYTES = 64 * 1024
# Ids are stored as 64-bit integers; a bigger one names nothing and must not reach the store.
MAX_ID = 2**63 - 1
_MAX_ID_DIGITS = len(str(MAX_ID))
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def parse_id(raw: str, name: str) -> int:
    """The id in path parameter ``name``; anything that cannot name a stored row is a 404."""
    noun = name.removesuffix("_id")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_ID_DIGITS or int(raw) > MAX_ID:
        shown = raw if len(raw) <= 24 else raw[:24] + "…"
        raise ApiError(404, f"{noun} {shown!r} not found", field=name)
    return int(raw)


def path_id(request: Request, name: str) -> int:
    return parse_id(str(request.path_params[name]), name)


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer …`` header, or a 401."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing bearer token", headers=BEARER_CHALLENGE)
    # Tokens are ASCII; anything else is not one of ours, and must not reach the verifier.
    if not token.isascii() or not token.isprintable():
        raise ApiError(401, "malformed token", headers=BEARER_CHALLENGE)
    return token


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body: 400 unless it parses, 422 unless it is an object."""
    if len(body) > MAX_JSON_BODY_BYTES:
        raise ApiError(413, f"a JSON body may be at most {MAX_JSON_BODY_BYTES} bytes")
    try:
        parsed = parse_json(body)
    except JsonRefused as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ApiError(422, "the body must be a JSON object")
    return parsed


async def json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, read up to the size limit and no further."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY_BYTES:
            raise ApiError(413, f"a JSON body may be at most {MAX_JSON_BODY_BYTES} bytes")
    return parse_json_object(body)


def text_field(body: dict[str, Any], name: str) -> str:
    """Field ``name`` of a JSON object, which must be a string of text (422 naming it if not)."""
    value = body.get(name)
    if not isinstance(value, str):
        raise ApiError(422, f"'{name}' must be a string", field=name)
    # A lone surrogate cannot be stored or sent on as UTF-8, nor NUL kept by every database.
    if not is_text(value):
        raise ApiError(422, f"'{name}' holds a character that is not text", field=name)
    return value
