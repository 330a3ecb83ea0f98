"""Signed event bodies: an HMAC-SHA256 of the exact body bytes, carried in the envelope.

A signed body is the unsigned body with one last envelope field appended::

    {"schema":1,…,"message":{…},"signature":"<64 hex digits>"}

The signature covers the unsigned body byte for byte: the body with the trailing
``,"signature":"…"`` removed, that is. No canonical re-encoding is involved, so a verifier
checks exactly what the publisher sent; JSON readers that do not verify just see one more field.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Sequence

from domain.errors import MalformedMessage

SIGNATURE_FIELD = "signature"
_SUFFIX = re.compile(rb',"signature":"([0-9a-f]{64})"\}\s*\Z')

UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad_signature"
IMPLAUSIBLE_VERSION = "implausible_version"


class UntrustedMessage(MalformedMessage):
    """A body that is unsigned, badly signed or implausible where only trusted ones count."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class EventSigner:
    """Signs bodies with the current key; verifies with the current or the previous one."""

    def __init__(self, key: str, previous: str | None = None) -> None:
        if not key:
            raise ValueError("a signing key must not be empty")
        self._key = key.encode()
        self._accepted: Sequence[bytes] = (self._key,) + ((previous.encode(),) if previous else ())

    def sign(self, body: bytes) -> bytes:
        """``body`` (an encoded envelope) with its signature appended as the last field."""
        if not body.endswith(b"}"):
            raise ValueError("only a JSON object body can be signed")
        digest = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return body[:-1] + b',"' + SIGNATURE_FIELD.encode() + b'":"' + digest.encode() + b'"}'

    def verify(self, body: bytes | str) -> bytes:
        """The unsigned body ``body`` carries; ``UntrustedMessage`` unless a key signed it."""
        raw = body.encode() if isinstance(body, str) else body
        match = _SUFFIX.search(raw)
        if match is None:
            raise UntrustedMessage(UNSIGNED, "the body carries no signature")
        unsigned = raw[: match.start()] + b"}"
        claimed = match.group(1)
        for key in self._accepted:
            expected = hmac.new(key, unsigned, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, claimed):
                return unsigned
        raise UntrustedMessage(BAD_SIGNATURE, "the signature matches no accepted key")


class VersionGuard:
    """Refuses versions no real entity reaches: beyond ``max_version``, or a leap of more than
    ``max_jump`` past the version last seen for the same entity.

    Remembers the last version of at most ``remembered`` entities, least recently seen
    forgotten first; an entity not remembered is held to ``max_version`` alone.
    """

    def __init__(self, *, max_version: int, max_jump: int, remembered: int = 100_000) -> None:
        if max_version < 1 or max_jump < 1 or remembered < 1:
            raise ValueError("version bounds must be positive")
        self._max_version = max_version
        self._max_jump = max_jump
        self._remembered = remembered
        self._last: OrderedDict[tuple[str, int], int] = OrderedDict()

    def check(self, entity: tuple[str, int], version: int) -> None:
        """Remember ``version`` of ``entity``; ``UntrustedMessage`` when it is implausible."""
        if version > self._max_version:
            raise UntrustedMessage(
                IMPLAUSIBLE_VERSION, f"version {version} exceeds {self._max_version}"
            )
        last = self._last.get(entity)
        if last is not None and version - last > self._max_jump:
            raise UntrustedMessage(
                IMPLAUSIBLE_VERSION,
                f"version {version} leaps more than {self._max_jump} past {last}",
            )
        if last is None or version > last:
            self._last[entity] = version
        self._last.move_to_end(entity)
        while len(self._last) > self._remembered:
            self._last.popitem(last=False)
