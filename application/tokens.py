"""Bearer tokens as the application sees them: a verified identity, and the ports that make one.

The application never parses a token itself; adapters implement ``TokenVerifier`` (and
``TokenIssuer`` for the built-in issuer) with a standard JWT library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from domain.result import Result

DEFAULT_TTL_SECONDS = 3600
OPERATOR_ROLE = "operator"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: whose it is, until when it holds, and the role it grants."""

    user_id: int
    issued_at: int | None
    expires_at: int
    role: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR_ROLE


class TokenVerifier(ABC):
    """Turns a bearer token into verified claims, or says why it is refused."""

    @abstractmethod
    def verify(self, token: str) -> Result[TokenClaims, str]: ...


class TokenIssuer(ABC):
    """Issues bearer tokens that this system's own verifier accepts."""

    @abstractmethod
    def issue(
        self, user_id: int, ttl_seconds: int = DEFAULT_TTL_SECONDS, *, role: str | None = None
    ) -> str: ...
