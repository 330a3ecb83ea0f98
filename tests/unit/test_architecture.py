"""The rules of the codebase, checked: layers, our own packages, no IO at import time."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("domain", "application", "adapters", "entrypoints", "migrations")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(executable), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(cwd)},
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_the_contracts_have_no_exceptions() -> None:
    assert "ignore_imports" not in (ROOT / ".importlinter").read_text()


def lint_imports_with(tmp_path: Path, module: str, extra_import: str) -> str:
    """Run lint-imports on a copy of the tree in which ``module`` gains ``extra_import``."""
    copy = tmp_path / "tree"
    copy.mkdir()
    shutil.copy(ROOT / ".importlinter", copy)
    for package in ("domain", "application", "adapters", "entrypoints"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    source = copy / (module.replace(".", "/") + ".py")
    source.write_text(f"import {extra_import}\n" + source.read_text())
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    return result.stdout


def test_the_forbidden_contract_bites(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "domain.status", "sqlalchemy")
    assert "domain.status -> sqlalchemy" in output


def test_the_layers_contract_bites(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "application.status_service", "adapters.memory.repository")
    assert "application.status_service -> adapters.memory.repository" in output


def test_the_independence_contract_bites(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "adapters.redis.broker", "adapters.nats.broker")
    assert "adapters.redis.broker -> adapters.nats.broker" in output


def test_the_one_root_contract_bites(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "entrypoints.server.app", "adapters.sql.database")
    assert "entrypoints.server.app -> adapters.sql.database" in output


def test_entrypoints_never_see_the_container(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "entrypoints.runtime", "adapters.container")
    assert "entrypoints.runtime -> adapters.container" in output


@pytest.mark.parametrize("package", OUR_PACKAGES)
def test_our_packages_are_the_ones_imported(package: str) -> None:
    module = __import__(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_no_namesake_distribution_is_installed() -> None:
    installed = {
        (dist.metadata["Name"] or "").lower().replace("_", "-")
        for dist in importlib.metadata.distributions()
    }
    assert installed.isdisjoint(OUR_PACKAGES)


def run_python(probe: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``probe`` in a fresh interpreter from the project's root."""
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_importing_every_module_does_no_io() -> None:
    # A fresh interpreter with sockets disabled imports every module of ours.
    probe = """
import pkgutil, importlib, socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("network IO at import time")
socket.socket.connect = refuse
socket.create_connection = refuse
for package in ("domain", "application", "adapters", "entrypoints"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
print("imported")
"""
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


def test_the_core_may_not_import_opentelemetry(tmp_path: Path) -> None:
    output = lint_imports_with(tmp_path, "application.tracing", "opentelemetry.trace")
    assert "application.tracing -> opentelemetry" in output


def test_the_core_imports_no_opentelemetry() -> None:
    # Every module of the core, imported in a fresh interpreter, loads no tracing library.
    probe = """
import pkgutil, importlib, sys
for package in ("domain", "application"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
print("loaded:", loaded)
"""
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    assert "loaded: []" in result.stdout


def test_tracing_off_loads_no_tracing_sdk() -> None:
    probe = """
import sys
from adapters.bootstrap import bootstrap
services = bootstrap({"DATABASE_URL": "memory://"})
print(type(services.tracer).__name__, "opentelemetry.sdk" in sys.modules)
"""
    result = run_python(probe, {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["NoTracer", "False"]
