"""Bearer tokens as JWTs: the built-in HS256 issuer, host-issued RS256/ES256 tokens, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest

from adapters.auth.jwt_tokens import (
    MAX_TOKEN_LENGTH,
    JwtIssuer,
    JwtVerifier,
    token_verifier,
)
from adapters.settings import ConfigError, Settings
from application.tokens import TokenClaims
from domain.result import Err, Ok
from tests.support.host_tokens import AUDIENCE, ISSUER, HostIssuer, unsigned_token

SECRET = "a-secret-of-at-least-sixteen-characters"


@pytest.fixture(scope="module")
def host() -> HostIssuer:
    return HostIssuer()


@pytest.fixture
def verifier(host: HostIssuer, tmp_path: Path) -> JwtVerifier:
    settings = Settings(
        secret_key=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_file=str(host.write_jwks(tmp_path)),
        jwt_leeway_seconds=5,
    )
    return token_verifier(settings)


def test_a_built_in_token_is_a_standard_jwt_carrying_its_user_until_it_expires() -> None:
    issued = int(time.time()) - 50
    token = JwtIssuer(SECRET, clock=lambda: issued).issue(42, ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "42"
    assert JwtVerifier(SECRET).verify(token) == Ok(
        TokenClaims(user_id=42, issued_at=issued, expires_at=issued + 60)
    )
    expired = JwtIssuer(SECRET, clock=lambda: issued - 20).issue(42, ttl_seconds=60)
    assert JwtVerifier(SECRET).verify(expired) == Err("token expired")


def test_the_role_claim_is_part_of_the_verified_identity() -> None:
    token = JwtIssuer(SECRET).issue(3, role="operator")
    claims = JwtVerifier(SECRET).verify(token).unwrap()
    assert claims.role == "operator"
    assert claims.is_operator
    assert not JwtVerifier(SECRET).verify(JwtIssuer(SECRET).issue(3)).unwrap().is_operator


def test_a_token_from_another_secret_is_refused() -> None:
    token = JwtIssuer("another-secret-of-some-length").issue(42)
    assert JwtVerifier(SECRET).verify(token) == Err("invalid token signature")


def test_changing_any_character_of_a_token_invalidates_it() -> None:
    verifier = JwtVerifier(SECRET)
    token = JwtIssuer(SECRET).issue(42)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1 :]
        # The last character of a base64url signature may carry unused bits only.
        if _decoded(tampered) == _decoded(token):
            continue
        assert verifier.verify(tampered).is_err(), position


def _decoded(token: str) -> list[bytes]:
    return [jwt.utils.base64url_decode(part) for part in token.split(".")]


def test_a_token_of_the_old_home_made_format_is_refused_with_a_clear_message() -> None:
    old = "v1.eyJzdWIiOjQyLCJpYXQiOjAsImV4cCI6MjAwMDAwMDAwMH0.c2lnbmF0dXJl"
    refused = JwtVerifier(SECRET).verify(old)
    assert refused == Err("token of an old format that is no longer accepted; get a new one")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "a.b.c.d",
        "!!!.???.***",
        "x" * (MAX_TOKEN_LENGTH + 1),
        "eyJhbGciOiJIUzI1NiJ9.é.abc",
        "ünïcödé",
        "\x00\x01\x02",
        "e30.e30.",
    ],
)
def test_garbage_is_refused_as_malformed(token: str) -> None:
    assert JwtVerifier(SECRET).verify(token) in (
        Err("malformed token"),
        Err("token of an old format that is no longer accepted; get a new one"),
    )


def _hs256(claims: dict[str, object]) -> str:
    return jwt.encode(claims, JwtIssuer(SECRET)._key, algorithm="HS256")


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"iss": "insighthub", "sub": "0", "exp": 4_000_000_000}, "not a positive user id"),
        ({"iss": "insighthub", "sub": "abc", "exp": 4_000_000_000}, "not a positive user id"),
        ({"iss": "insighthub", "sub": True, "exp": 4_000_000_000}, "not a positive user id"),
        ({"iss": "insighthub", "sub": "42"}, "lacks the 'exp' claim"),
        ({"sub": "42", "exp": 4_000_000_000}, "lacks the 'iss' claim"),
        ({"iss": ISSUER, "sub": "42", "exp": 4_000_000_000}, "unknown issuer"),
        ({"iss": "insighthub", "sub": "42", "exp": "soon"}, "malformed token"),
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_refused(
    claims: dict[str, object], error: str
) -> None:
    refused = JwtVerifier(SECRET).verify(_hs256(claims))
    assert isinstance(refused, Err)
    assert error in refused.error


@pytest.mark.parametrize(("user_id", "ttl"), [(0, 60), (-1, 60), (1, 0), (1, -5)])
def test_issuing_needs_a_positive_user_and_lifetime(user_id: int, ttl: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        JwtIssuer(SECRET).issue(user_id, ttl)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        JwtIssuer("")


# -- the host application's tokens -------------------------------------------------------------


def test_a_host_rs256_token_from_the_jwks_is_accepted(
    host: HostIssuer, verifier: JwtVerifier
) -> None:
    claims = verifier.verify(host.token("7", role="operator")).unwrap()
    assert (claims.user_id, claims.role) == (7, "operator")


def test_a_host_es256_token_from_the_jwks_is_accepted(
    host: HostIssuer, verifier: JwtVerifier
) -> None:
    assert verifier.verify(host.token("8", algorithm="ES256")).unwrap().user_id == 8


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda h: h.token(aud="someone-else"), "token meant for another audience"),
        (lambda h: h.token(aud=None), "token lacks the 'aud' claim"),
        (lambda h: h.token(iss="https://evil.example"), "token from an unknown issuer"),
        (lambda h: h.token(issued_ago=700), "token expired"),
        (lambda h: h.token(nbf=int(time.time()) + 120), "token not yet valid"),
        (lambda h: h.token(kid="not-in-the-set"), "token signed with an unknown key"),
        (lambda h: HostIssuer().token(), "invalid token signature"),
        (lambda h: unsigned_token(iss=ISSUER, aud=AUDIENCE, sub="7"), "unsigned tokens"),
        (lambda h: h.token(user="-3"), "not a positive user id"),
    ],
)
def test_host_tokens_are_refused_when_any_check_fails(
    host: HostIssuer, verifier: JwtVerifier, make: object, error: str
) -> None:
    assert callable(make)
    refused = verifier.verify(make(host))
    assert isinstance(refused, Err), refused
    assert error in refused.error


def test_clock_skew_within_the_leeway_is_tolerated(host: HostIssuer, verifier: JwtVerifier) -> None:
    assert verifier.verify(host.token(issued_ago=602)).is_ok()
    assert verifier.verify(host.token(nbf=int(time.time()) + 3)).is_ok()


def test_algorithm_confusion_is_refused(host: HostIssuer, verifier: JwtVerifier) -> None:
    # An HS256 token "signed" with the host's public key must not pass as a host token.
    public = host.rsa_public_pem().encode()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = base64.urlsafe_b64encode(
        json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "7", "exp": 4_000_000_000}).encode()
    )
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    signature = base64.urlsafe_b64encode(
        hmac.new(public, signing_input, hashlib.sha256).digest()
    ).rstrip(b"=")
    forged = (signing_input + b"." + signature).decode()
    assert verifier.verify(forged).is_err()
    # An ES256 header over an RS256 key's signature names a key the set holds only for RS256.
    rs256 = host.token()
    _, body, sig = rs256.split(".")
    es_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "ES256", "kid": host.rsa_kid}).encode()
    ).rstrip(b"=")
    assert verifier.verify(f"{es_header.decode()}.{body}.{sig}") == Err(
        "token signed with an unknown key"
    )


def test_host_algorithms_are_refused_without_host_configuration(host: HostIssuer) -> None:
    assert JwtVerifier(SECRET).verify(host.token()) == Err(
        "tokens signed with RS256 are not accepted"
    )


def test_a_pem_public_key_verifies_host_tokens(host: HostIssuer, tmp_path: Path) -> None:
    for value in (host.rsa_public_pem(), str(_write(tmp_path / "host.pem", host.rsa_public_pem()))):
        verifier = token_verifier(
            Settings(
                secret_key=SECRET,
                jwt_public_key=value,
                jwt_audience=AUDIENCE,
                jwt_user_claim="uid",
            )
        )
        assert verifier.verify(host.token(kid=None, uid=11)).unwrap().user_id == 11
        assert verifier.verify(host.token(kid=None)) == Err(
            "token's 'uid' claim is not a positive user id"
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        (
            {"jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
            "JWT_PUBLIC_KEY",
        ),
        ({"jwt_public_key": "/nonexistent/key.pem"}, "JWT_PUBLIC_KEY"),
        ({"jwt_jwks_file": "/nonexistent/jwks.json"}, "JWT_JWKS_FILE"),
    ],
)
def test_an_unusable_key_is_a_configuration_error(settings: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        token_verifier(Settings(secret_key=SECRET, **settings))  # type: ignore[arg-type]


def test_a_jwks_that_is_not_json_is_a_configuration_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "jwks.json", "{not json")
    with pytest.raises(ConfigError, match="JWT_JWKS_FILE"):
        token_verifier(Settings(secret_key=SECRET, jwt_jwks_file=str(path)))


def test_a_key_of_a_kind_not_allowed_is_a_configuration_error(host: HostIssuer) -> None:
    with pytest.raises(ConfigError, match="JWT_ALGORITHMS"):
        token_verifier(
            Settings(
                secret_key=SECRET, jwt_public_key=host.rsa_public_pem(), jwt_algorithms=("ES256",)
            )
        )


def test_the_jwt_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "JWT_JWKS_FILE": "/etc/jwks.json",
            "JWT_ALGORITHMS": "rs256",
            "JWT_USER_CLAIM": "uid",
            "JWT_LEEWAY_SECONDS": "30",
        }
    )
    assert settings.jwt_algorithms == ("RS256",)
    assert settings.jwt_leeway_seconds == 30.0
    assert settings.jwt_user_claim == "uid"
    for variable, bad in (("JWT_ALGORITHMS", "HS256"), ("JWT_LEEWAY_SECONDS", "-1")):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_environ({variable: bad})
