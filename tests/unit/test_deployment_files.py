"""The Dockerfile and compose.yaml only use commands and settings the program accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.settings import ENVIRONMENT_VARIABLES, Settings, new_secret
from entrypoints.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
KNOWN_VARIABLES = set(ENVIRONMENT_VARIABLES)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def insighthub_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == "insighthub:latest"
    }


def test_compose_runs_the_server_migrations_relay_and_every_worker() -> None:
    commands = {name: tuple(s["command"]) for name, s in insighthub_services().items()}
    assert commands["migrate"] == ("migrate",)
    assert commands["server"][0] == "serve"
    assert commands["relay"] == ("relay",)
    workers = {c[1] for c in commands.values() if c[0] == "worker"}
    assert workers == {"provisioning", "ingestion", "embeddings", "graph"}


@pytest.mark.parametrize("name", sorted(insighthub_services()))
def test_every_compose_command_is_accepted_by_the_cli(name: str) -> None:
    command = insighthub_services()[name]["command"]
    args = build_parser().parse_args(command)
    assert callable(args.handler)


@pytest.mark.parametrize("name", sorted(insighthub_services()))
def test_every_compose_variable_is_a_setting_with_a_valid_value(name: str) -> None:
    environment: dict[str, str] = insighthub_services()[name]["environment"]
    assert set(environment) <= KNOWN_VARIABLES, set(environment) - KNOWN_VARIABLES
    resolved = {
        key: re.sub(r"\$\{SECRET_KEY[^}]*\}", new_secret(), str(value))
        for key, value in environment.items()
    }
    settings = Settings.from_environ(resolved)
    assert settings.transport == "rabbitmq"
    assert settings.persistence == "sql"


def test_every_long_running_service_has_a_health_check_it_can_pass() -> None:
    for name, service in insighthub_services().items():
        command = service["command"]
        if command[0] == "worker":
            health_file = command[command.index("--health-file") + 1]
            assert health_file in " ".join(service["healthcheck"]["test"]), name
        elif command[0] == "serve":
            port = command[command.index("--port") + 1]
            assert f":{port}/readyz" in " ".join(service["healthcheck"]["test"])


def test_the_dockerfile_entrypoint_and_default_command_are_accepted() -> None:
    text = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    command = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["insighthub"]
    build_parser().parse_args(command)
    for variable in re.findall(r"^\s*(?:ENV\s+)?([A-Z_]+)=", text, re.M):
        if not variable.startswith(("PYTHON", "PIP_")):
            assert variable in KNOWN_VARIABLES
    for package in ("domain", "application", "adapters", "entrypoints", "migrations"):
        assert f"COPY {package} ./{package}" in text
