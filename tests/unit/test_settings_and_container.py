from __future__ import annotations

import secrets
import sys

import pytest

from adapters.container import build_container, close_container
from adapters.memory.broker import InMemoryBroker
from adapters.memory.repository import InMemoryStatusRepository
from adapters.settings import ENVIRONMENT_VARIABLES, ConfigError, Settings, new_secret, secret_bits


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_environ({})
    assert settings.transport == "memory"
    assert settings.database_url == "sqlite:///var/insighthub.db"
    assert settings.persistence == "sql"
    assert settings.delivery == "direct"
    assert not settings.secret_key_given


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("TRANSPORT", "kafka", "memory, rabbitmq, nats, redis"),
        ("DATABASE_URL", "mysql://x", "postgresql"),
        ("RABBITMQ_URL", "http://x", "amqp://"),
        ("NATS_URL", "localhost:4222", "nats://"),
        ("REDIS_URL", "memcached://x", "redis://"),
        ("DELIVERY", "carrier-pigeon", "direct, outbox"),
        ("MAX_UPLOAD_BYTES", "lots", "whole number"),
        ("MAX_DELIVERIES", "0", "positive"),
        ("WORKER_LEASE_SECONDS", "-1", "positive"),
        ("SECRET_KEY", "short", "32 bytes"),
        ("SECRET_KEY", "a" * 200, "32 bytes"),
        ("SECRET_KEY", "change-me-to-a-long-secret", "example"),
        ("SECRET_KEY", "CHANGE_ME_" + "x1y2z3w4" * 6, "example"),
        ("ALLOWED_ORIGINS", "example.com", "https://"),
        ("LOG_FORMAT", "xml", "text, json"),
        ("RABBITMQ_EXCHANGE", "a b", "letters"),
        ("BROKER_NAMESPACE", "Prod.Status", "lower-case"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert words in str(raised.value)


def test_values_are_parsed() -> None:
    settings = Settings.from_environ(
        {
            "TRANSPORT": "RabbitMQ",
            "MAX_UPLOAD_BYTES": "1024",
            "ALLOWED_ORIGINS": "https://a.example, http://localhost:8000/",
            "SECRET_KEY": new_secret(),
        }
    )
    assert settings.transport == "rabbitmq"
    assert settings.max_upload_bytes == 1024
    assert settings.allowed_origins == ("https://a.example", "http://localhost:8000")
    assert settings.secret_key_given


def test_the_container_builds_the_memory_branch_and_nothing_else() -> None:
    for name in ("pika", "nats", "redis", "adapters.rabbitmq.broker", "adapters.sql.database"):
        sys.modules.pop(name, None)
    container, _ = build_container({"DATABASE_URL": "memory://"})
    assert isinstance(container.broker(), InMemoryBroker)
    assert isinstance(container.repository(), InMemoryStatusRepository)
    assert container.status_service().publisher is not None
    assert container.broker() is container.broker()
    assert container.workspaces().create(user_id=1, name="w").is_ok()
    for name in ("pika", "nats", "adapters.rabbitmq.broker", "adapters.sql.database"):
        assert name not in sys.modules, f"{name} was imported for the memory branch"
    close_container(container)


def test_an_unknown_transport_fails_before_anything_is_built() -> None:
    with pytest.raises(ConfigError, match="TRANSPORT"):
        build_container({"TRANSPORT": "zeromq"})


def test_every_setting_has_its_environment_variable() -> None:
    fields = {name.upper() for name in Settings.__dataclass_fields__} - {"SECRET_KEY_GIVEN"}
    assert set(ENVIRONMENT_VARIABLES) == fields


def test_a_secret_in_hex_or_base64url_of_32_bytes_is_accepted() -> None:
    for _ in range(200):
        for secret in (new_secret(), secrets.token_hex(32)):
            assert Settings.from_environ({"SECRET_KEY": secret}).secret_key == secret


def test_a_secret_of_24_random_bytes_is_too_weak() -> None:
    assert secret_bits(secrets.token_urlsafe(24)) < 256
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_environ({"SECRET_KEY": secrets.token_urlsafe(24)})


def test_the_generated_default_secret_is_strong() -> None:
    assert secret_bits(Settings().secret_key) >= 256
