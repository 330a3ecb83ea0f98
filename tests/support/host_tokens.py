"""A stand-in for a host application that issues its own RS256/ES256 tokens and a JWKS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://host.example"
AUDIENCE = "insighthub-status"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class HostIssuer:
    """Signs tokens as the host application would; ``jwks`` publishes the public halves."""

    rsa_key: rsa.RSAPrivateKey = field(default_factory=_rsa_key)
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rsa_kid: str = "host-rsa-1"
    ec_kid: str = "host-ec-1"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, algorithm, key in (
            (self.rsa_kid, "RS256", self.rsa_key),
            (self.ec_kid, "ES256", self.ec_key),
        ):
            jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, directory: Path) -> Path:
        path = directory / "jwks.json"
        path.write_text(json.dumps(self.jwks()))
        return path

    def rsa_public_pem(self) -> str:
        return (
            self.rsa_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(
        self,
        user: object = "7",
        *,
        algorithm: str = "RS256",
        kid: str | None = "default",
        ttl: float = 600,
        issued_ago: float = 0,
        **claims: Any,
    ) -> str:
        now = time.time() - issued_ago
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": user, "iat": int(now)}
        payload["exp"] = int(now + ttl)
        payload.update(claims)
        key = self.rsa_key if algorithm == "RS256" else self.ec_key
        headers: dict[str, Any] = {}
        if kid is not None:
            headers["kid"] = (
                (self.rsa_kid if algorithm == "RS256" else self.ec_kid) if kid == "default" else kid
            )
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None},
            key,
            algorithm=algorithm,
            headers=headers,
        )


def unsigned_token(**claims: Any) -> str:
    """A token with ``alg: none`` (no signature at all)."""
    header, payload = ({"alg": "none", "typ": "JWT"}, claims)
    parts = (jwt.utils.base64url_encode(json.dumps(part).encode()) for part in (header, payload))
    return b".".join(parts).decode() + "."


def host_environment(jwks_path: Path) -> dict[str, str]:
    """The settings that make a server accept ``HostIssuer`` tokens."""
    return {"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE, "JWT_JWKS_FILE": str(jwks_path)}
