"""The command line: help everywhere, one-line errors for bad configuration, demo --once."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.settings import Settings
from entrypoints.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def insighthub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_every_command_has_help() -> None:
    parser = build_parser()
    (subcommands,) = (
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    names = set(subcommands.choices)
    assert {"demo", "serve", "worker", "relay", "migrate", "token"} <= names
    assert len(names) == len(COMMANDS)
    for name in names:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([name, "--help"])
        assert exited.value.code == 0


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["worker", "ingestion"], "TRANSPORT"),
        (["relay"], "DELIVERY"),
        (["serve", "--port", "0"], "MAX_UPLOAD_BYTES"),
        (["serve", "--port", "0"], "SECRET_KEY"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(command: list[str], variable: str) -> None:
    bad = {
        "TRANSPORT": "kafka",
        "DELIVERY": "pigeon",
        "MAX_UPLOAD_BYTES": "huge",
        "SECRET_KEY": "change-me-to-a-long-secret",
    }[variable]
    result = insighthub(*command, env={variable: bad})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"insighthub: {variable}: ")
    assert "Traceback" not in result.stderr


def test_secret_prints_a_fresh_secret_that_the_settings_accept() -> None:
    first, second = insighthub("secret"), insighthub("secret")
    assert first.returncode == 0
    assert first.stdout != second.stdout
    secret = first.stdout.strip()
    assert Settings.from_environ({"SECRET_KEY": secret}).secret_key == secret


def test_demo_once_prints_the_whole_lifecycle() -> None:
    result = insighthub("demo", "--once")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "workspace 1   Demo workspace         ready       v2" in out
    assert out.count(" ready ") >= 3
    assert "failed      v3" in out
    assert "error: Parsing failed: the PDF is corrupt" in out


@pytest.mark.parametrize("command", [["worker", "ingestion"], ["relay"], ["serve"], ["demo"]])
def test_overrides_reach_the_root_of_every_command_that_wires(command: list[str]) -> None:
    # An unknown provider name is refused by bootstrap itself, before anything is started.
    with pytest.raises(ValueError, match="no provider 'no_such_part' to override"):
        main(command, overrides={"no_such_part": object()})
