"""JWT bearer tokens: HS256 from ``SECRET_KEY`` for the built-in issuer, RS256/ES256 for the host.

Each key is bound to the algorithms of its own kind, so a token can never pick how it is
checked: the shared secret is tried only for HS256, a host's public key only for the
asymmetric algorithm it was configured for, and ``alg: none`` is refused before any key is.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from adapters.settings import ConfigError, Settings
from application.tokens import DEFAULT_TTL_SECONDS, TokenClaims, TokenIssuer, TokenVerifier
from domain.result import Err, Ok, Result

BUILT_IN_ISSUER = "insighthub"
BUILT_IN_ALGORITHM = "HS256"
# A JWT signed with a 4096-bit RSA key and a handful of claims stays well below this.
MAX_TOKEN_LENGTH = 8192
# Keys for different purposes must never coincide, even when derived from one secret.
_KEY_LABEL = b"insighthub bearer token jwt\x00"
_LEGACY_PREFIX = "v1."
_KEY_TYPES: dict[str, type] = {"RS256": RSAPublicKey, "ES256": EllipticCurvePublicKey}


def _built_in_key(secret: str) -> bytes:
    if not secret:
        raise ValueError("a token secret must not be empty")
    return hashlib.sha256(_KEY_LABEL + secret.encode()).digest()


class JwtIssuer(TokenIssuer):
    """Issues HS256 JWTs signed with a key derived from ``secret``; ``clock`` gives Unix seconds."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = _built_in_key(secret)
        self._clock = clock

    def issue(
        self, user_id: int, ttl_seconds: int = DEFAULT_TTL_SECONDS, *, role: str | None = None
    ) -> str:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise ValueError(f"a user id must be a positive integer, not {user_id!r}")
        if ttl_seconds <= 0:
            raise ValueError(f"a token's lifetime must be positive, not {ttl_seconds!r}")
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": BUILT_IN_ISSUER,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        if role is not None:
            claims["role"] = role
        return jwt.encode(claims, self._key, algorithm=BUILT_IN_ALGORITHM)


@dataclass(frozen=True, slots=True)
class HostKey:
    """One public key of the host application, and the one algorithm it verifies."""

    key: Any
    algorithm: str
    key_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HostTokens:
    """How to verify the host application's tokens."""

    keys: tuple[HostKey, ...]
    issuer: str | None = None
    audience: str | None = None
    user_claim: str = "sub"
    role_claim: str = "role"


class JwtVerifier(TokenVerifier):
    """Verifies built-in HS256 tokens and, when configured, the host application's tokens."""

    def __init__(
        self, secret: str, *, host: HostTokens | None = None, leeway_seconds: float = 0.0
    ) -> None:
        self._built_in_key = _built_in_key(secret)
        self._host = host
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Result[TokenClaims, str]:
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return Err("malformed token")
        if token.startswith(_LEGACY_PREFIX):
            return Err("token of an old format that is no longer accepted; get a new one")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Err("malformed token")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            return Err("malformed token")
        if algorithm.lower() == "none":
            return Err("unsigned tokens are not accepted")
        if algorithm == BUILT_IN_ALGORITHM:
            return self._decode(
                token,
                self._built_in_key,
                algorithm,
                issuer=BUILT_IN_ISSUER,
                audience=None,
                user_claim="sub",
                role_claim="role",
            )
        host = self._host
        if host is None or algorithm not in {key.algorithm for key in host.keys}:
            return Err(f"tokens signed with {algorithm} are not accepted")
        key = _pick_key(host.keys, algorithm, header.get("kid"))
        if key is None:
            return Err("token signed with an unknown key")
        return self._decode(
            token,
            key.key,
            algorithm,
            issuer=host.issuer,
            audience=host.audience,
            user_claim=host.user_claim,
            role_claim=host.role_claim,
        )

    def _decode(
        self,
        token: str,
        key: Any,
        algorithm: str,
        *,
        issuer: str | None,
        audience: str | None,
        user_claim: str,
        role_claim: str,
    ) -> Result[TokenClaims, str]:
        required = ["exp", *(["iss"] if issuer else []), *(["aud"] if audience else [])]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=issuer,
                audience=audience,
                leeway=self._leeway,
                # ``sub`` is checked below, as the configured user claim, whatever its name.
                options={"require": required, "verify_sub": False, "verify_jti": False},
            )
        except jwt.ExpiredSignatureError:
            return Err("token expired")
        except jwt.ImmatureSignatureError:
            return Err("token not yet valid")
        except jwt.InvalidAudienceError:
            return Err("token meant for another audience")
        except jwt.InvalidIssuerError:
            return Err("token from an unknown issuer")
        except jwt.InvalidSignatureError:
            return Err("invalid token signature")
        except jwt.MissingRequiredClaimError as exc:
            return Err(f"token lacks the '{exc.claim}' claim")
        except (jwt.PyJWTError, ValueError, TypeError):
            return Err("malformed token")
        user_id = _user_id(claims.get(user_claim))
        if user_id is None:
            return Err(f"token's '{user_claim}' claim is not a positive user id")
        role = claims.get(role_claim)
        return Ok(
            TokenClaims(
                user_id=user_id,
                issued_at=_whole(claims.get("iat")),
                expires_at=int(claims["exp"]),
                role=role if isinstance(role, str) else None,
            )
        )


def _pick_key(keys: Sequence[HostKey], algorithm: str, key_id: object) -> HostKey | None:
    candidates = [key for key in keys if key.algorithm == algorithm]
    named = [key for key in candidates if key.key_id is not None and key.key_id == key_id]
    if named:
        return named[0]
    # A key configured without an id (JWT_PUBLIC_KEY) answers for any id, if it is the only one.
    unnamed = [key for key in candidates if key.key_id is None or key_id is None]
    return unnamed[0] if len(unnamed) == 1 else None


def _whole(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _user_id(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


def _read(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(variable, f"cannot read {path!r}: {exc}") from None


def _algorithm_of(variable: str, key: Any, allowed: Sequence[str]) -> str:
    for algorithm in allowed:
        if isinstance(key, _KEY_TYPES[algorithm]):
            return algorithm
    raise ConfigError(
        variable, f"the key is of a kind none of {', '.join(allowed)} verifies (JWT_ALGORITHMS)"
    )


def _public_key(raw: str, allowed: Sequence[str]) -> HostKey:
    variable = "JWT_PUBLIC_KEY"
    pem = raw if raw.lstrip().startswith("-----BEGIN") else _read(variable, raw)
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(variable, f"not a PEM public key: {exc}") from None
    return HostKey(key=key, algorithm=_algorithm_of(variable, key, allowed))


def _jwks(path: str, allowed: Sequence[str]) -> list[HostKey]:
    variable = "JWT_JWKS_FILE"
    try:
        document = json.loads(_read(variable, path))
        key_set = jwt.PyJWKSet.from_dict(document)
    except (ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(variable, f"not a usable JSON Web Key Set: {exc}") from None
    keys = []
    for jwk in key_set.keys:
        if jwk.public_key_use not in (None, "sig"):
            continue
        algorithm = _algorithm_of(variable, jwk.key, allowed)
        if jwk.algorithm_name not in (algorithm, None):
            raise ConfigError(variable, f"key {jwk.key_id!r} is for {jwk.algorithm_name}")
        keys.append(HostKey(key=jwk.key, algorithm=algorithm, key_id=jwk.key_id))
    if not keys:
        raise ConfigError(variable, "the set holds no signing key")
    return keys


def host_tokens(settings: Settings) -> HostTokens | None:
    """The host's verification settings, keys loaded; ``None`` when none is configured."""
    keys: list[HostKey] = []
    if settings.jwt_public_key is not None:
        keys.append(_public_key(settings.jwt_public_key, settings.jwt_algorithms))
    if settings.jwt_jwks_file is not None:
        keys.extend(_jwks(settings.jwt_jwks_file, settings.jwt_algorithms))
    if not keys:
        return None
    return HostTokens(
        keys=tuple(keys),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        user_claim=settings.jwt_user_claim,
        role_claim=settings.jwt_role_claim,
    )


def token_verifier(settings: Settings) -> JwtVerifier:
    """The verifier the configuration asks for; ``ConfigError`` for an unusable key."""
    return JwtVerifier(
        settings.secret_key,
        host=host_tokens(settings),
        leeway_seconds=settings.jwt_leeway_seconds,
    )
