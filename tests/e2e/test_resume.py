"""Resume, don't resend: a reconnecting client is answered with what changed, on real servers.

PostgreSQL, each transport, both deliveries, two server instances; documents are bulk-loaded
straight into the database, then changed through the API while the client is away.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, clean_environ, stored_workspace, wait_for
from tests.support.live import (
    EventStreamReader,
    collect_answer,
    open_scoped,
    socket_frames,
    subscription_query,
)
from tests.support.processes import private_postgres, private_transport

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TRANSPORTS = [
    pytest.param("memory"),
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    pytest.param("nats", marks=pytest.mark.nats),
    pytest.param("redis", marks=pytest.mark.redis),
]
MISSED = 100
STORED = 300


@contextlib.contextmanager
def deployment_settings(transport: str, delivery: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with private_postgres() as database_url, contextlib.ExitStack() as stack:
        broker = {} if transport == "memory" else stack.enter_context(private_transport(transport))
        yield {
            "DATABASE_URL": database_url,
            "TRANSPORT": transport,
            "DELIVERY": delivery,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "STORAGE_DIR": str(tmp_path / "files"),
            **broker,
        }


@contextlib.contextmanager
def relay(environ: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """An outbox relay process, so that outbox delivery reaches the servers' subscriptions."""
    with (tmp_path / "relay.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "relay"],
            env=clean_environ(environ),
            stdout=log,
            stderr=log,
        )
        try:
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def sse_answer(server: ServerProcess, token: str, scope: str, cursor: str) -> tuple[Any, str]:
    url = f"{server.base_url}/events?{subscription_query(token, [scope])}"
    with httpx.stream(
        "GET", url, headers={"Last-Event-ID": cursor}, timeout=httpx.Timeout(15.0)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventStreamReader(response)
        answer = collect_answer(reader.frames(), scope)
        assert reader.last_event_id == answer.cursor
        return answer, answer.cursor


@pytest.mark.parametrize("delivery", ["direct", "outbox"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_client_away_for_100_changes_gets_exactly_those_on_either_instance(
    transport: str,
    delivery: str,
    tmp_path: Path,
    make_server: Callable[..., ServerProcess],
    new_user: Callable[[], int],
) -> None:
    with deployment_settings(transport, delivery, tmp_path) as environ:
        first = make_server(environ=environ, args=["--no-workers"])
        second = make_server(environ=environ, args=["--no-workers"])
        user = new_user()
        token = first.token(user)
        workspace, stored = stored_workspace(first, environ["DATABASE_URL"], user, STORED)
        scope = f"workspace:{workspace['id']}"
        with first.client(user) as api:
            with open_scoped(first.port, token, [scope]) as ws:
                snapshot = collect_answer(socket_frames(ws), scope)
            assert snapshot.mode == "snapshot"
            assert snapshot.ids == stored[:100]
            assert snapshot.more == str(stored[99])

            # Away: 100 documents change, most of them beyond the first page.
            missed = stored[::3][:MISSED]
            for document_id in missed:
                assert api.post(f"/api/documents/{document_id}/retry").status_code == 202
            latest = {d: api.get(f"/api/documents/{d}").json() for d in missed}

            answers = []
            for server in (first, second):
                with open_scoped(server.port, token, [scope], snapshot.cursor) as ws:
                    answers.append(collect_answer(socket_frames(ws), scope))
            sse, sse_cursor = sse_answer(second, token, scope, snapshot.cursor)
            for answer in (*answers, sse):
                assert answer.mode == "resumed", answer.reason
                assert sorted(answer.ids) == sorted(missed)
                assert {e["id"]: e for e in answer.entities} == latest
            assert answers[0].entities == answers[1].entities == sse.entities
            assert answers[0].cursor == answers[1].cursor == sse_cursor != snapshot.cursor

            # Then live: one more change arrives as a delta whose cursor is further on.
            if transport == "memory" and delivery == "outbox":
                return  # nothing relays a memory outbox of a server without workers
            with contextlib.ExitStack() as stack:
                if delivery == "outbox":
                    stack.enter_context(relay(environ, tmp_path))
                ws = stack.enter_context(open_scoped(first.port, token, [scope], answers[0].cursor))
                assert collect_answer(socket_frames(ws), scope).ids == []
                changed = stored[1]
                assert api.post(f"/api/documents/{changed}/retry").status_code == 202
                frames = socket_frames(ws, timeout=30)
                delta = wait_for(lambda: _delta_of(next(frames), changed), timeout=30)
                assert delta["data"]["status"] == "pending"
                assert position(delta["cursor"]) > position(answers[0].cursor)


def position(cursor: str) -> int:
    return int(cursor.rsplit(":", 1)[1])


def _delta_of(raw: str, document_id: int) -> dict[str, Any] | None:
    frame: dict[str, Any] = json.loads(raw)
    if frame.get("type") == "document_status" and frame["data"]["document_id"] == document_id:
        return frame
    return None


def test_a_large_answer_is_paged_into_bounded_frames_and_foreign_cursors_get_a_snapshot(
    tmp_path: Path, make_server: Callable[..., ServerProcess], new_user: Callable[[], int]
) -> None:
    with deployment_settings("memory", "direct", tmp_path) as environ:
        server = make_server(environ=environ, args=["--no-workers"])
        user = new_user()
        token = server.token(user)
        workspace, stored = stored_workspace(server, environ["DATABASE_URL"], user, 2000)
        scope = f"workspace:{workspace['id']}"
        with open_scoped(server.port, token, [scope]) as ws:
            first = collect_answer(socket_frames(ws), scope)
        epoch = first.cursor.rsplit(":", 1)[0]

        with open_scoped(server.port, token, [scope], f"{epoch}:0") as ws:
            everything = collect_answer(socket_frames(ws), scope)
        assert everything.mode == "resumed"
        assert sorted(everything.ids) == stored
        assert everything.frames > 1
        assert everything.largest_frame <= 256 * 1024

        for cursor, reason in [
            ("not a cursor", "malformed cursor"),
            ("0123456789abcdef:5", "cursor of another epoch"),
            (f"{epoch}:{10**15}", "unknown cursor"),
        ]:
            with open_scoped(server.port, token, [scope], cursor) as ws:
                answer = collect_answer(socket_frames(ws), scope)
            assert (answer.mode, answer.reason) == ("snapshot", reason)
            assert answer.ids == stored[:100]
            assert answer.cursor == first.cursor
