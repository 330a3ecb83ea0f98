"""Configuration from the environment, read once and validated at start-up."""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

TRANSPORTS = ("memory", "rabbitmq", "nats", "redis")
DELIVERIES = ("direct", "outbox")
LOG_FORMATS = ("text", "json")
# Algorithms a host application's tokens may be signed with (public-key only: see adapters/auth).
JWT_HOST_ALGORITHMS = ("RS256", "ES256")
DEFAULT_DATABASE_URL = "sqlite:///var/insighthub.db"

T = TypeVar("T")
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh ``SECRET_KEY`` of ``SECRET_BYTES`` random bytes."""
    return secrets.token_urlsafe(SECRET_BYTES)


class ConfigError(Exception):
    """A configuration value that is missing, unknown or malformed; names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    transport: str = "memory"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    rabbitmq_exchange: str = "insighthub"
    nats_url: str = "nats://127.0.0.1:4222"
    broker_namespace: str = "insighthub"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = field(default_factory=new_secret, repr=False)
    secret_key_given: bool = False
    delivery: str = "direct"
    storage_dir: str = "var/files"
    max_upload_bytes: int = 20 * 1024 * 1024
    max_deliveries: int = 5
    redelivery_seconds: float = 30.0
    worker_lease_seconds: float = 60.0
    worker_heartbeat_seconds: float = 5.0
    step_deadline_seconds: float = 300.0
    extract_cpu_seconds: int = 30
    extract_memory_mb: int = 1024
    extract_max_pages: int = 2000
    extract_max_chars: int = 5_000_000
    log_format: str = "text"
    allowed_origins: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_jwks_file: str | None = None
    jwt_algorithms: tuple[str, ...] = JWT_HOST_ALGORITHMS
    jwt_user_claim: str = "sub"
    jwt_role_claim: str = "role"
    jwt_leeway_seconds: float = 0.0
    event_signing_key: str | None = field(default=None, repr=False)
    event_signing_key_previous: str | None = field(default=None, repr=False)
    event_max_version: int = 1_000_000_000
    event_max_version_jump: int = 100_000
    quota_documents: int = 10_000
    quota_bytes: int = 10 * 1024**3
    uploads_per_minute: int = 60
    client_frames_per_second: int = 50
    # Tracing, by the OpenTelemetry variables: off unless an exporter or endpoint is named.
    otel_traces_exporter: tuple[str, ...] = ()
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_service_name: str = "insighthub"

    @property
    def persistence(self) -> str:
        """``memory`` for ``DATABASE_URL=memory://``, ``sql`` for everything else."""
        return "memory" if self.database_url.startswith("memory:") else "sql"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Every variable is optional; a present one that is malformed raises ``ConfigError``."""
        values: dict[str, Any] = {}
        for variable, parse in _PARSERS.items():
            raw = environ.get(variable)
            if raw is not None and raw.strip() != "":
                values[variable.lower()] = parse(variable, raw.strip())
        if "secret_key" in values:
            values["secret_key_given"] = True
        if "event_signing_key_previous" in values and "event_signing_key" not in values:
            raise ConfigError(
                "EVENT_SIGNING_KEY_PREVIOUS", "is accepted only alongside EVENT_SIGNING_KEY"
            )
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "persistence": self.persistence}


def _choice(allowed: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        value = raw.lower()
        if value not in allowed:
            raise ConfigError(variable, f"must be one of {', '.join(allowed)} (got {raw!r})")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        scheme = urlsplit(raw).scheme
        if scheme not in schemes:
            raise ConfigError(
                variable,
                f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
                f" (got {raw!r})",
            )
        return raw

    return parse


def _database_url(variable: str, raw: str) -> str:
    if raw.startswith("memory:"):
        return raw
    scheme = urlsplit(raw).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ConfigError(
            variable,
            f"must be memory://, sqlite:///PATH or postgresql+psycopg://… (got scheme {scheme!r})",
        )
    return raw


def _name(variable: str, raw: str) -> str:
    if not raw.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ConfigError(variable, f"must be letters, digits, '.', '-' or '_' (got {raw!r})")
    return raw


def _namespace(variable: str, raw: str) -> str:
    if not all(ch.islower() or ch.isdigit() or ch in "-_" for ch in raw) or not raw[0].isalnum():
        raise ConfigError(variable, f"must be lower-case letters, digits, '-' or '_' (got {raw!r})")
    return raw


MIN_SECRET_BITS = SECRET_BYTES * 8
# Values that appear in examples and templates: whoever reads them can sign tokens.
KNOWN_EXAMPLE_SECRETS = frozenset(
    {
        "changemetoalongsecret",
        "changeme",
        "changemechangeme",
        "secret",
        "secretkey",
        "mysecretkey",
        "supersecret",
        "password",
        "insighthub",
        "asecretofsixteenchars",
        "0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
    }
)


_ALPHABETS = (
    (frozenset(string.hexdigits.lower()), 16),
    (frozenset(string.hexdigits.upper()), 16),
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_lowercase + string.digits), 36),
    (frozenset(string.ascii_uppercase + string.digits), 36),
    (frozenset(string.ascii_letters + string.digits), 62),
    (frozenset(string.ascii_letters + string.digits + "-_"), 64),
    (frozenset(string.printable), 94),
)
MIN_DISTINCT_SECRET_CHARACTERS = 10


def secret_bits(raw: str) -> float:
    """An estimate of a secret's entropy: its length times the bits of the smallest alphabet
    it fits in (hex, base64url, printable…); none for a secret of few distinct characters."""
    if len(set(raw)) < MIN_DISTINCT_SECRET_CHARACTERS:
        return 0.0
    used = set(raw)
    alphabet = next((size for chars, size in _ALPHABETS if used <= chars), 256)
    return len(raw) * math.log2(alphabet)


def _secret(variable: str, raw: str) -> str:
    hint = "generate one with `insighthub secret`"
    normalised = "".join(ch for ch in raw.lower() if ch.isalnum())
    if normalised in KNOWN_EXAMPLE_SECRETS or "changeme" in normalised:
        raise ConfigError(variable, f"is an example value that anyone can read; {hint}")
    if secret_bits(raw) < MIN_SECRET_BITS:
        raise ConfigError(
            variable, f"must hold at least {SECRET_BYTES} bytes of randomness; {hint}"
        )
    return raw


def _positive_int(variable: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(variable, f"must be a whole number (got {raw!r})") from None
    if value <= 0:
        raise ConfigError(variable, f"must be positive (got {value})")
    return value


def _positive_float(variable: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(variable, f"must be a number of seconds (got {raw!r})") from None
    if not value > 0:
        raise ConfigError(variable, f"must be positive (got {raw})")
    return value


def _non_negative_float(variable: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(variable, f"must be a number of seconds (got {raw!r})") from None
    if not value >= 0:
        raise ConfigError(variable, f"must not be negative (got {raw})")
    return value


def _choices(allowed: tuple[str, ...]) -> Callable[[str, str], tuple[str, ...]]:
    def parse(variable: str, raw: str) -> tuple[str, ...]:
        values = tuple(part.strip().upper() for part in raw.split(",") if part.strip())
        unknown = [value for value in values if value not in allowed]
        if unknown or not values:
            raise ConfigError(
                variable, f"must be a comma-separated list of {', '.join(allowed)} (got {raw!r})"
            )
        return values

    return parse


def _origins(variable: str, raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                variable, f"each origin must look like https://host[:port] (got {origin!r})"
            )
    return origins


def _verbatim(variable: str, raw: str) -> str:
    return raw


TRACE_EXPORTERS = ("otlp", "console", "none")


def _exporters(variable: str, raw: str) -> tuple[str, ...]:
    """``otlp``, ``console``, ``none`` or a ``module:Class`` span exporter, comma-separated."""
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        module, colon, attribute = name.partition(":")
        custom = bool(colon) and all(
            part.isidentifier() for part in (*module.split("."), attribute)
        )
        if name.lower() not in TRACE_EXPORTERS and not custom:
            raise ConfigError(
                variable,
                f"must name {', '.join(TRACE_EXPORTERS)} or a module:Class exporter (got {name!r})",
            )
    return tuple(name if ":" in name else name.lower() for name in names)


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "DATABASE_URL": _database_url,
    "TRANSPORT": _choice(TRANSPORTS),
    "RABBITMQ_URL": _url("amqp", "amqps"),
    "RABBITMQ_EXCHANGE": _name,
    "NATS_URL": _url("nats", "tls"),
    "REDIS_URL": _url("redis", "rediss", "unix"),
    "BROKER_NAMESPACE": _namespace,
    "SECRET_KEY": _secret,
    "DELIVERY": _choice(DELIVERIES),
    "STORAGE_DIR": _verbatim,
    "MAX_UPLOAD_BYTES": _positive_int,
    "MAX_DELIVERIES": _positive_int,
    "REDELIVERY_SECONDS": _positive_float,
    "WORKER_LEASE_SECONDS": _positive_float,
    "WORKER_HEARTBEAT_SECONDS": _positive_float,
    "STEP_DEADLINE_SECONDS": _positive_float,
    "EXTRACT_CPU_SECONDS": _positive_int,
    "EXTRACT_MEMORY_MB": _positive_int,
    "EXTRACT_MAX_PAGES": _positive_int,
    "EXTRACT_MAX_CHARS": _positive_int,
    "LOG_FORMAT": _choice(LOG_FORMATS),
    "ALLOWED_ORIGINS": _origins,
    "JWT_ISSUER": _verbatim,
    "JWT_AUDIENCE": _verbatim,
    "JWT_PUBLIC_KEY": _verbatim,
    "JWT_JWKS_FILE": _verbatim,
    "JWT_ALGORITHMS": _choices(JWT_HOST_ALGORITHMS),
    "JWT_USER_CLAIM": _verbatim,
    "JWT_ROLE_CLAIM": _verbatim,
    "JWT_LEEWAY_SECONDS": _non_negative_float,
    "EVENT_SIGNING_KEY": _secret,
    "EVENT_SIGNING_KEY_PREVIOUS": _secret,
    "EVENT_MAX_VERSION": _positive_int,
    "EVENT_MAX_VERSION_JUMP": _positive_int,
    "QUOTA_DOCUMENTS": _positive_int,
    "QUOTA_BYTES": _positive_int,
    "UPLOADS_PER_MINUTE": _positive_int,
    "CLIENT_FRAMES_PER_SECOND": _positive_int,
    "OTEL_TRACES_EXPORTER": _exporters,
    "OTEL_EXPORTER_OTLP_ENDPOINT": _url("http", "https"),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": _url("http", "https"),
    "OTEL_SERVICE_NAME": _verbatim,
}

# Every environment variable the configuration reads: nothing else changes its behaviour.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(_PARSERS)
