"""Signed, expiring bearer tokens that carry a user id.

A token is ``v1.<payload>.<signature>``: the payload is base64url JSON
``{"sub": user_id, "iat": issued, "exp": expires}`` (Unix seconds) and the signature is
HMAC-SHA256 over ``v1.<payload>`` with a key derived from the configured secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

from domain.result import Err, Ok, Result

TOKEN_PREFIX = "v1"
MAX_TOKEN_LENGTH = 512
DEFAULT_TTL_SECONDS = 3600
# Keys for different purposes must never coincide, even when derived from one secret.
_KEY_LABEL = b"insighthub bearer token v1\x00"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: whose it is and until when it holds."""

    user_id: int
    issued_at: int
    expires_at: int


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or not all(ch.isalnum() or ch in "-_" for ch in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class TokenSigner:
    """Issues and verifies bearer tokens with one secret; ``clock`` gives Unix seconds."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a token secret must not be empty")
        self._key = hashlib.sha256(_KEY_LABEL + secret.encode()).digest()
        self._clock = clock

    def issue(self, user_id: int, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
        """A token for ``user_id`` that expires ``ttl_seconds`` from now."""
        if isinstance(user_id, bool) or user_id <= 0:
            raise ValueError(f"a user id must be a positive integer, not {user_id!r}")
        if ttl_seconds <= 0:
            raise ValueError(f"a token's lifetime must be positive, not {ttl_seconds!r}")
        now = int(self._clock())
        claims = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        signed = f"{TOKEN_PREFIX}.{payload}"
        return f"{signed}.{self._sign(signed)}"

    def verify(self, token: str) -> Result[TokenClaims, str]:
        """The claims of a genuine, unexpired token; ``Err`` says why any other is refused."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return Err("malformed token")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return Err("malformed token")
        signed = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(signed), parts[2]):
            return Err("invalid token signature")
        try:
            claims = json.loads(_b64decode(parts[1]))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return Err("malformed token")
        if not isinstance(claims, dict):
            return Err("malformed token")
        user_id, issued, expires = claims.get("sub"), claims.get("iat"), claims.get("exp")
        if not (_is_int(user_id) and _is_int(issued) and _is_int(expires)) or user_id <= 0:
            return Err("malformed token")
        if self._clock() >= expires:
            return Err("token expired")
        return Ok(TokenClaims(user_id=user_id, issued_at=issued, expires_at=expires))

    def _sign(self, signed: str) -> str:
        return _b64encode(hmac.new(self._key, signed.encode("ascii"), hashlib.sha256).digest())
