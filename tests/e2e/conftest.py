"""Real server processes for end-to-end tests: ``insighthub serve`` on a free loopback port."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from adapters.auth.jwt_tokens import JwtIssuer
from adapters.bootstrap import Services, bootstrap
from adapters.settings import ENVIRONMENT_VARIABLES
from entrypoints.server import create_app
from tests.support.processes import free_port

STARTUP_SECONDS = 30.0
# Variables a developer's shell may set that must not leak into a test server's configuration.
CONFIG_VARIABLES = ENVIRONMENT_VARIABLES
TEST_UPLOAD_LIMIT = 256 * 1024


def clean_environ(overrides: Mapping[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    environ.update(overrides)
    return environ


@dataclass
class ServerProcess:
    """One running ``insighthub serve``, with what a test needs to talk to it."""

    port: int
    secret: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.base_url

    def ws_url(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={token}"

    def token(self, user_id: int, ttl: int = 3600) -> str:
        return JwtIssuer(self.secret).issue(user_id, ttl)

    def client(self, user_id: int | None = None) -> httpx.Client:
        headers = {} if user_id is None else {"Authorization": f"Bearer {self.token(user_id)}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=15.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.base_url}/metrics", timeout=5.0).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"metric {name} not exposed")

    def stop(self) -> int:
        if not self.stopped:
            self.stopped = True
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        return self.process.returncode


def start_server(
    log_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    require_ready: bool = True,
    module: str = "entrypoints.cli",
    port: int | None = None,
) -> ServerProcess:
    """Start a server (in memory by default) and wait until it answers ``/readyz``.

    ``module`` is what ``python -m`` runs: the command line, or a test's own wrapper of it;
    ``port`` a fixed port (a restart on the same address), else a free one.
    """
    port = port or free_port()
    secret = secrets.token_urlsafe(32)
    settings = {
        "DATABASE_URL": "memory://",
        "TRANSPORT": "memory",
        "SECRET_KEY": secret,
        "MAX_UPLOAD_BYTES": str(TEST_UPLOAD_LIMIT),
        **(environ or {}),
    }
    secret = settings["SECRET_KEY"]
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, "-m", module, "serve", "--port", str(port), *args]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=clean_environ(settings), stdout=log_file, stderr=subprocess.STDOUT
        )
    server = ServerProcess(port=port, secret=secret, process=process, log_path=log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{server.base_url}/readyz", timeout=2.0)
            if answer.status_code == 200 or (not require_ready and answer.status_code == 503):
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def server(server_logs: Path) -> Iterator[ServerProcess]:
    """A shared in-memory server with in-process workers; tests isolate by user id."""
    process = start_server(server_logs)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def idle_server(server_logs: Path) -> Iterator[ServerProcess]:
    """A server whose work is never done: workspaces stay provisioning, documents pending."""
    process = start_server(server_logs, args=["--no-workers"])
    yield process
    process.stop()


@pytest.fixture
def make_server(server_logs: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers of a test's own; each is stopped when the test ends."""
    started: list[ServerProcess] = []

    def make(**kwargs: Any) -> ServerProcess:
        process = start_server(server_logs, **kwargs)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


_user_ids = itertools.count(secrets.randbelow(10**9) + 10**6)


@pytest.fixture
def new_user() -> Callable[[], int]:
    """A user id no other test uses, so that tests sharing a server cannot see each other."""
    return lambda: next(_user_ids)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """The first truthy value of ``predicate()``, or an ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def ready_workspace(client: httpx.Client, name: str = "Reports") -> dict[str, Any]:
    """Create a workspace and wait until it is ready."""
    created = client.post("/api/workspaces", json={"name": name})
    assert created.status_code == 202, created.text
    workspace_id = created.json()["id"]

    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/workspaces/{workspace_id}").json()
        return body if body["status"] == "ready" else None

    result: dict[str, Any] = wait_for(ready)
    return result


def upload(
    client: httpx.Client, workspace_id: int, filename: str, content: bytes
) -> httpx.Response:
    return client.post(
        f"/api/workspaces/{workspace_id}/documents",
        files={"file": (filename, content, "application/octet-stream")},
    )


def settled_document(client: httpx.Client, document_id: int) -> dict[str, Any]:
    """Wait until the document is ready or failed, and return it."""

    def settled() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/documents/{document_id}").json()
        return body if body["processing_status"] in ("ready", "failed") else None

    result: dict[str, Any] = wait_for(settled)
    return result


GOOD_TEXT = b"Status tracking keeps every change versioned and pushed live. " * 40
BROKEN_PDF = b"%PDF-1.4\n% not a real PDF body\n%%EOF\n"


def stored_workspace(
    server: ServerProcess, database_url: str, user_id: int, count: int
) -> tuple[dict[str, Any], list[int]]:
    """A new workspace of ``user_id`` holding ``count`` failed documents, bulk-loaded by SQL."""
    from bench.bulk import insert_documents

    with server.client(user_id) as api:
        workspace: dict[str, Any] = api.post("/api/workspaces", json={"name": "Archive"}).json()
    ids = insert_documents(database_url, user_id=user_id, workspace_id=workspace["id"], count=count)
    return workspace, ids


def postgres_server(
    make_server: Callable[..., ServerProcess], database_url: str, tmp_path: Path
) -> ServerProcess:
    """A server without workers on ``database_url``, with the in-memory transport."""
    return make_server(
        environ={"DATABASE_URL": database_url, "STORAGE_DIR": str(tmp_path / "files")},
        args=["--no-workers"],
    )


# The in-process app on the memory transport, for tests that drive it with Starlette's client.
@pytest.fixture
def services() -> Iterator[Services]:
    services = bootstrap({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    services.start()
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client
