"""Benchmark 6: a reconnect costs what changed, not what the user owns.

One user owns a workspace of many documents (bulk-loaded into PostgreSQL). Measured against
one ``insighthub serve``: the bytes and time of a protocol-1 snapshot of everything; the bytes
of a first protocol-2 connect (the workspace list and the workspace's first page); after
``missed`` changes made while away, the bytes and time of a resume; and, after a server
restart, a storm of sockets resuming at once: the time until every one is answered and the
feed reads the server issued for them.

Resume times are the server's: from the handshake's answer to the answer's last frame.
Each is a fresh read: between rounds a document of another workspace of the user (outside the
subscribed scopes) changes, and its event stops the server from reusing the previous read.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

from adapters.auth.jwt_tokens import JwtIssuer
from bench.bulk import insert_documents
from bench.processes import Background, free_port, http_ok, insighthub, wait_until
from bench.results import Row
from bench.services import Workspace, private_workspace
from bench.wsclient import RawWebSocket, connect, connect_many

RECONNECT_USER_ID = 4_400_000


def _start(context: Any, workspace: Workspace, name: str) -> Background:
    port = free_port()
    command = ["serve", "--port", str(port), "--no-workers", "--max-sockets-per-user", "1000000"]
    server = insighthub(name, command, workspace.environ("memory"), context.log_dir)
    server.port = port
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), f"{name} ready", 60, server)
    return server


def _request(port: int, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _feed_reads(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("status_feed_reads_total "):
                return float(line.split()[1])
    raise RuntimeError("status_feed_reads_total is not exposed")


class _Answers:
    """Counts, per socket, the bytes received and the answers completed (``last`` parts)."""

    def __init__(self, scopes: int) -> None:
        self.scopes = scopes
        self.bytes: dict[RawWebSocket, int] = {}
        self.done: dict[RawWebSocket, int] = {}
        self.cursor: str | None = None
        self.modes: set[str] = set()
        self.finished = asyncio.get_running_loop().create_future()
        self.expected = 1
        self.completed = 0
        self.completed_at = 0.0

    def __call__(self, socket: RawWebSocket, payload: bytes, at: float) -> None:
        self.bytes[socket] = self.bytes.get(socket, 0) + len(payload)
        self.completed_at = at
        frame = json.loads(payload)
        if frame.get("type") == "snapshot":
            self._complete(socket)
        elif frame.get("type") == "sync" and frame["last"]:
            self.cursor = frame["cursor"]
            self.modes.add(frame["mode"])
            self.done[socket] = self.done.get(socket, 0) + 1
            if self.done[socket] == self.scopes:
                self._complete(socket)

    def _complete(self, socket: RawWebSocket) -> None:
        self.completed += 1
        if self.completed >= self.expected and not self.finished.done():
            self.finished.set_result(None)


async def _answer_once(port: int, path: str, scopes: int) -> tuple[int, float, _Answers]:
    """Bytes of one socket's complete first answer, and the seconds the server took for it.

    The server's time runs from the handshake's answer (the socket is registered and its
    reads begin) to the arrival of the answer's last frame; loopback adds next to nothing.
    """
    answers = _Answers(scopes)
    socket = await connect("127.0.0.1", port, path, answers)
    await asyncio.wait_for(answers.finished, 60)
    socket.close()
    return answers.bytes[socket], answers.completed_at - socket.upgraded_at, answers


async def _storm(port: int, path: str, scopes: int, count: int) -> tuple[float, int, int]:
    answers = _Answers(scopes)
    answers.expected = count
    started = time.perf_counter()
    sockets, errors = await connect_many(count, "127.0.0.1", port, path, answers, in_flight=count)
    answers.expected = len(sockets)
    if answers.completed >= answers.expected and not answers.finished.done():
        answers.finished.set_result(None)
    await asyncio.wait_for(answers.finished, 120)
    elapsed = time.perf_counter() - started
    for socket in sockets:
        socket.close()
    return elapsed, len(errors), sum(answers.bytes.values())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def reconnect(context: Any) -> list[Row]:
    sizes = context.sizes
    documents, missed = sizes.reconnect_documents, sizes.reconnect_missed
    rows: list[Row] = []
    with private_workspace(context.endpoints) as workspace:
        token = JwtIssuer(workspace.secret_key).issue(RECONNECT_USER_ID, 3600)
        server = _start(context, workspace, "serve-reconnect")
        try:
            created = _request(server.port, token, "POST", "/api/workspaces", {"name": "Archive"})
            ids = insert_documents(
                workspace.database_url,
                user_id=RECONNECT_USER_ID,
                workspace_id=created["id"],
                count=documents,
            )
            aside = _request(server.port, token, "POST", "/api/workspaces", {"name": "Aside"})
            elsewhere = insert_documents(
                workspace.database_url,
                user_id=RECONNECT_USER_ID,
                workspace_id=aside["id"],
                count=sizes.reconnect_rounds,
            )
            context.log(f"[6] {documents} documents; full snapshot, first connect, resume")
            scopes = f"scope=workspaces&scope=workspace:{created['id']}"
            full_bytes, full_seconds, _ = asyncio.run(
                _answer_once(server.port, f"/ws?token={token}", 1)
            )
            first_bytes, _, first = asyncio.run(
                _answer_once(server.port, f"/ws?token={token}&{scopes}", 2)
            )
            cursor = first.cursor
            assert cursor is not None
            for document_id in ids[:: max(1, documents // missed)][:missed]:
                _request(server.port, token, "POST", f"/api/documents/{document_id}/retry")
            resume_path = f"/ws?token={token}&{scopes}&cursor={cursor}"
            timings: list[float] = []
            resume_bytes = 0
            modes: set[str] = set()
            for document_id in elsewhere:
                _request(server.port, token, "POST", f"/api/documents/{document_id}/retry")
                time.sleep(0.02)  # the change's event reaches the hub: no read is reused
                received, seconds, resumed = asyncio.run(_answer_once(server.port, resume_path, 2))
                resume_bytes = resume_bytes or received
                timings.append(seconds)
                modes |= resumed.modes
        finally:
            server.stop()
        # After a restart every socket comes back at once, holding the same cursor.
        context.log(f"[6] reconnect storm of {sizes.storm_sockets} sockets after a restart")
        server = _start(context, workspace, "serve-reconnect-restarted")
        try:
            reads_before = _feed_reads(server.port)
            storm_seconds, storm_errors, storm_bytes = asyncio.run(
                _storm(server.port, resume_path, 2, sizes.storm_sockets)
            )
            storm_reads = _feed_reads(server.port) - reads_before
        finally:
            server.stop()
    p50, p99 = _percentile(timings, 0.5) * 1000, _percentile(timings, 0.99) * 1000
    extra = {
        "documents": documents,
        "missed": missed,
        "resume_modes": sorted(modes),
        "full_snapshot_ms": full_seconds * 1000,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(timings) * 1000,
        "rounds": len(timings),
    }
    name = "6 reconnect"
    rows.append(
        Row(
            name,
            f"resume after {missed} missed changes, {documents} documents",
            "bytes",
            resume_bytes,
            "full snapshot",
            full_bytes,
            "≤ 1/100 of the bytes",
            0.01,
            lower_is_better=True,
            extra=extra,
        )
    )
    rows.append(
        Row(
            name,
            "resume, time to the complete answer",
            "p99 ms",
            p99,
            "target",
            20.0,
            "p99 ≤ 20 ms",
            1.0,
            lower_is_better=True,
            extra=extra,
        )
    )
    rows.append(
        Row(
            name,
            f"full snapshot (protocol 1), {documents} documents",
            "bytes",
            full_bytes,
            extra={"seconds": full_seconds},
            note=f"{full_seconds * 1000:.0f} ms to receive",
        )
    )
    rows.append(
        Row(
            name,
            "first connect (workspace list + first page)",
            "bytes",
            first_bytes,
            "target",
            128 * 1024,
            "≤ 128 KB",
            1.0,
            lower_is_better=True,
        )
    )
    storm_extra = {"sockets": sizes.storm_sockets, "errors": storm_errors, "bytes": storm_bytes}
    rows.append(
        Row(
            name,
            f"storm of {sizes.storm_sockets} sockets after a restart, time until all resumed",
            "s",
            storm_seconds,
            "target",
            5.0,
            "≤ 5 s",
            1.0,
            lower_is_better=True,
            extra=storm_extra,
            note="" if not storm_errors else f"{storm_errors} sockets failed to open",
        )
    )
    rows.append(
        Row(
            name,
            f"storm of {sizes.storm_sockets} sockets, feed reads issued",
            "reads",
            storm_reads,
            "distinct scopes",
            2.0,
            "≤ distinct scopes",
            1.0,
            lower_is_better=True,
            extra=storm_extra,
        )
    )
    return rows
