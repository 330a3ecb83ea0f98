"""Bearer tokens: signed, expiring, and refused for every kind of tampering."""

from __future__ import annotations

import base64
import json

import pytest

from application.tokens import MAX_TOKEN_LENGTH, TokenClaims, TokenSigner
from domain.result import Err, Ok

SECRET = "a-secret-of-at-least-sixteen-characters"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _payload(claims: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def test_a_token_carries_its_user_until_it_expires() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, clock=clock)
    token = signer.issue(42, ttl_seconds=60)
    assert signer.verify(token) == Ok(
        TokenClaims(user_id=42, issued_at=int(clock.now), expires_at=int(clock.now) + 60)
    )
    clock.now += 59
    assert signer.verify(token).is_ok()
    clock.now += 1
    assert signer.verify(token) == Err("token expired")


def test_a_token_from_another_secret_is_refused() -> None:
    token = TokenSigner("another-secret-of-some-length").issue(42)
    assert TokenSigner(SECRET).verify(token) == Err("invalid token signature")


def test_changing_any_character_of_a_token_invalidates_it() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue(42)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1 :]
        assert signer.verify(tampered).is_err(), position


def test_a_payload_swapped_in_from_another_token_is_refused() -> None:
    signer = TokenSigner(SECRET)
    mine, theirs = signer.issue(1), signer.issue(2)
    forged = ".".join([*mine.split(".")[:1], theirs.split(".")[1], mine.split(".")[2]])
    assert signer.verify(forged) == Err("invalid token signature")


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v1..", "v2.e30.abc", "a.b.c.d", "v1.!!!.???", "x" * (MAX_TOKEN_LENGTH + 1)],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert TokenSigner(SECRET).verify(token).is_err()


@pytest.mark.parametrize(
    "claims",
    [
        [1, 2, 3],
        {"sub": "42", "iat": 0, "exp": 2_000_000_000},
        {"sub": True, "iat": 0, "exp": 2_000_000_000},
        {"sub": 0, "iat": 0, "exp": 2_000_000_000},
        {"sub": 42, "iat": 0},
        {"sub": 42, "iat": 0, "exp": 2e9},
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_refused(claims: object) -> None:
    signer = TokenSigner(SECRET, clock=Clock())
    signed = f"v1.{_payload(claims)}"
    token = f"{signed}.{signer._sign(signed)}"
    assert signer.verify(token) == Err("malformed token")


@pytest.mark.parametrize(("user_id", "ttl"), [(0, 60), (-1, 60), (1, 0), (1, -5)])
def test_issuing_needs_a_positive_user_and_lifetime(user_id: int, ttl: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenSigner(SECRET).issue(user_id, ttl)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenSigner("")
