"""Signed events on real brokers: what a stranger publishes never reaches a browser.

A server signs what it publishes with ``EVENT_SIGNING_KEY``; a forged status event (unsigned,
signed with another key, or validly signed but of an absurd version) published straight to
the broker is dropped and counted, and forged work is dead-lettered while the worker goes on.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from adapters.container import build_container, close_container
from domain.events import WorkspaceCreated, WorkspaceStatusUpdated, encode
from domain.ports import MessageBroker
from domain.signing import EventSigner
from domain.status import WorkspaceStatus
from tests.e2e.conftest import ServerProcess, clean_environ, ready_workspace, wait_for
from tests.e2e.test_websocket import Frame, drain, frames_until, open_socket, receive
from tests.support.processes import private_transport
from tests.support.raw_messages import publish_raw

pytestmark = pytest.mark.slow

KEY = secrets.token_urlsafe(32)
IMPLAUSIBLE_VERSION = 2_000_000_000
TRANSPORTS = [
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    pytest.param("nats", marks=pytest.mark.nats),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=TRANSPORTS)
def signed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings of a signing deployment on a private place of the transport, with a
    provisioning worker of its own running."""
    with private_transport(request.param) as transport:
        environ = {
            **transport,
            "EVENT_SIGNING_KEY": KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'status.db'}",
            "STORAGE_DIR": str(tmp_path / "files"),
        }
        subprocess.run(_cli("migrate"), env=clean_environ(environ), check=True, timeout=120)
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                _cli("worker", "provisioning"), env=clean_environ(environ), stdout=log, stderr=log
            )
            try:
                yield environ
                assert worker.poll() is None, "the worker stopped"
            finally:
                worker.terminate()
                worker.wait(timeout=30)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *args]


@pytest.fixture
def stranger(signed: dict[str, str]) -> Iterator[MessageBroker]:
    """The deployment's broker, for publishing what no server of it would."""
    container, _ = build_container(signed)
    try:
        yield container.broker()
    finally:
        close_container(container)


def _forged_status(workspace: dict[str, object], user: int, version: int) -> bytes:
    return encode(
        WorkspaceStatusUpdated(
            workspace_id=int(str(workspace["id"])),
            user_id=user,
            name="forged",
            status=WorkspaceStatus.ERROR,
            message="forged",
            version=version,
        )
    )


def _refused(server: ServerProcess) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{server.base_url}/metrics", timeout=5.0).text
    found = re.findall(r'^events_refused_total\{kind="(\w+)",reason="(\w+)"\} (\S+)$', text, re.M)
    return {(kind, reason): float(count) for kind, reason, count in found}


def test_forged_events_are_dropped_and_counted_and_signed_ones_still_arrive(
    signed: dict[str, str],
    stranger: MessageBroker,
    make_server: Callable[..., ServerProcess],
    new_user: Callable[[], int],
) -> None:
    server = make_server(environ=signed)
    user = new_user()
    with open_socket(server, user) as ws, server.client(user) as api:
        assert receive(ws)["type"] == "snapshot"
        space = ready_workspace(api)  # its events went out signed and were taken
        drain(ws)
        version = int(str(space["version"]))
        forgeries = {
            "unsigned": _forged_status(space, user, version + 1),
            "bad_signature": EventSigner("another key, not ours").sign(
                _forged_status(space, user, version + 1)
            ),
            # Over EVENT_MAX_VERSION, yet under the bound past which the decoder calls it malformed.
            "implausible_version": EventSigner(KEY).sign(
                _forged_status(space, user, IMPLAUSIBLE_VERSION)
            ),
        }
        for body in forgeries.values():
            publish_raw(stranger, WorkspaceStatusUpdated.routing_key, body)
        forged_work = WorkspaceCreated(
            workspace_id=int(str(space["id"])), user_id=user, name="forged", version=1
        )
        publish_raw(stranger, forged_work.routing_key, encode(forged_work))

        # A normal change afterwards still arrives, and nothing forged came before it.
        later = api.post("/api/workspaces", json={"name": "Later"}).json()

        def later_ready(frame: Frame) -> bool:
            data = frame.get("data", {})
            return bool(data.get("workspace_id") == later["id"] and data.get("status") == "ready")

        frames = frames_until(ws, later_ready, timeout=60) + drain(ws)
        assert not [f for f in frames if "forged" in str(f)]
        assert not [f for f in frames if f.get("data", {}).get("version") == IMPLAUSIBLE_VERSION]

    expected = {("status", reason): 1.0 for reason in forgeries}
    assert wait_for(lambda: _refused(server).items() >= expected.items(), timeout=10)

    def forged_letters() -> list[str]:
        return [
            letter.reason
            for letter in stranger.dead_letters().of("provisioning")
            if letter.event is not None and letter.event.event_id == forged_work.event_id
        ]

    (reason,) = wait_for(forged_letters, timeout=20)
    assert reason.startswith("unsigned")
