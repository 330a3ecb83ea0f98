from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

from adapters.bootstrap import WORKER_KINDS, Services, bootstrap
from adapters.container import build_container, close_container
from adapters.memory.broker import InMemoryBroker
from adapters.memory.repository import InMemoryStatusRepository
from adapters.pacing import PacedPublisher
from adapters.settings import ENVIRONMENT_VARIABLES, ConfigError, Settings, new_secret, secret_bits
from domain.events import (
    WORK_QUEUES,
    DocumentChunked,
    DocumentStatusUpdated,
    StatusEvent,
)
from tests.contracts.broker import document_status
from tests.fakes.messaging import RecordingPublisher


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


MEMORY = {"DATABASE_URL": "memory://", "TRANSPORT": "memory"}


def test_bootstrap_hands_out_the_memory_wiring_and_nothing_else() -> None:
    for name in ("pika", "nats", "redis", "adapters.rabbitmq.broker", "adapters.sql.database"):
        sys.modules.pop(name, None)
    services = bootstrap(MEMORY)
    services.start()
    assert isinstance(services.broker, InMemoryBroker)
    assert services.broker is services.broker
    assert services.workspaces.create(user_id=1, name="w").is_ok()
    assert services.repository.list_workspaces(user_id=1)[0].name == "w"
    for name in ("pika", "nats", "adapters.rabbitmq.broker", "adapters.sql.database"):
        assert name not in sys.modules, f"{name} was imported for the memory branch"
    services.close()


def test_every_worker_kind_has_handlers_and_an_unknown_one_is_refused() -> None:
    services = bootstrap(MEMORY)
    keys = {kind: set(services.handlers_for(kind)) for kind in WORKER_KINDS}
    assert keys == {
        "provisioning": {"workspace.created"},
        "ingestion": {"document.uploaded"},
        "embeddings": {"document.chunked"},
        "graph": {"document.embedded"},
    }
    with pytest.raises(ValueError, match="unknown worker 'printing'"):
        services.handlers_for("printing")


def test_an_override_replaces_what_its_provider_yields_everywhere() -> None:
    repository = InMemoryStatusRepository()
    services = bootstrap(MEMORY, overrides={"repository": repository})
    workspace = services.workspaces.create(user_id=3, name="mine").unwrap()
    assert services.repository is repository
    assert repository.get_workspace(workspace.id) == workspace


def test_an_override_of_an_unknown_provider_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match=r"no provider 'repo' to override; choose from .*repository"
    ):
        bootstrap(MEMORY, overrides={"repo": InMemoryStatusRepository()})


def test_the_hand_off_can_be_replaced_alone() -> None:
    hand_offs = RecordingPublisher()
    services = bootstrap(MEMORY, overrides={"hand_off_publisher": hand_offs})
    heard: list[StatusEvent] = []
    services.broker.subscribe_status(heard.append)
    workspace = services.workspaces.create(user_id=5, name="w").unwrap()
    take(services, "provisioning")
    document = services.documents.upload(
        user_id=5, workspace_id=workspace.id, filename="a.txt", content=[b"words " * 200]
    ).unwrap()
    take(services, "ingestion")
    assert [(type(e), getattr(e, "document_id", None)) for e in hand_offs.events] == [
        (DocumentChunked, document.id)
    ]
    # The status events still went out through the broker, and no hand-off reached it.
    assert any(isinstance(e, DocumentStatusUpdated) for e in heard)
    assert services.broker.work_queue("embeddings", WORK_QUEUES["embeddings"]).receive(0) is None
    services.close()


def take(services: Services, queue: str) -> None:
    """Handle the one request waiting on ``queue``, as its worker would."""
    work = services.broker.work_queue(queue, WORK_QUEUES[queue])
    delivery = work.receive(timeout=1)
    assert delivery is not None, f"nothing on {queue}"
    services.handlers_for(queue)[delivery.event.routing_key](delivery.event)
    delivery.ack()
    work.close()


def test_a_step_delay_paces_only_the_direct_status_publisher() -> None:
    paced = bootstrap(MEMORY, step_delay=0.5).status_service.publisher
    assert isinstance(paced, PacedPublisher)
    assert not isinstance(bootstrap(MEMORY).status_service.publisher, PacedPublisher)
    outbox = bootstrap({**MEMORY, "DELIVERY": "outbox"}, step_delay=0.5)
    assert outbox.status_service.publisher is None


def test_close_closes_what_was_opened_and_nothing_else_is_ever_opened(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    services = bootstrap({"DATABASE_URL": f"sqlite:///{database}", "TRANSPORT": "memory"})
    heard: list[StatusEvent] = []
    broker = services.broker
    broker.subscribe_status(heard.append)
    services.close()
    broker.publisher().publish(document_status(1, version=2))
    assert heard == [], "the broker's subscriptions were not closed"
    assert not database.exists(), "the database was opened although nothing used it"


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
