"""The benchmarks. Each starts the processes it needs, measures, and returns its rows."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from adapters.auth.jwt_tokens import JwtIssuer
from bench import processes
from bench.adversarial import adversarial
from bench.eta import eta
from bench.overhead import worker_overhead
from bench.processes import Background, Conversation, free_port, http_ok, insighthub, wait_until
from bench.profiling import Spy
from bench.reconnect import reconnect
from bench.results import Row, first_line, unavailable
from bench.services import (
    Endpoints,
    Workspace,
    libpq_url,
    per_transport,
    private_workspace,
    rabbitmq_sink,
)
from bench.writers import concurrent_writers

PYTHON = sys.executable
FANOUT_USER_ID = 4_300_000
LATENCY_USER_ID = 4_200_000
Log = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does; ``smoke`` is just enough to show it still works."""

    updates: int
    latency_seconds: float
    saturation_updates: int
    fanout: tuple[tuple[int, int], ...]
    connections: int
    corpus: int
    worker_counts: tuple[int, ...] = (1, 2)
    bursts: int = 5
    connection_peers: tuple[str, ...] = ("insighthub", "bare")
    adversarial_text: tuple[int, int] = (100_000, 1_000_000)
    reconnect_documents: int = 20_000
    reconnect_missed: int = 100
    reconnect_rounds: int = 200
    storm_sockets: int = 1_000
    eta_documents: int = 80
    writers: int = 8
    writer_updates: int = 1000
    relays: int = 2

    @classmethod
    def full(cls, max_sockets: int) -> Sizes:
        fanout = tuple(
            (c, m) for c, m in ((200, 100), (1000, 40), (10_000, 10)) if c <= max_sockets
        )
        return cls(
            updates=3000,
            latency_seconds=10.0,
            saturation_updates=2000,
            fanout=fanout or ((max_sockets, 10),),
            connections=max_sockets,
            corpus=120,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            updates=40,
            latency_seconds=0.25,
            saturation_updates=30,
            fanout=((20, 5),),
            connections=30,
            corpus=4,
            bursts=2,
            worker_counts=(1,),
            adversarial_text=(20_000, 200_000),
            reconnect_documents=300,
            reconnect_missed=10,
            reconnect_rounds=5,
            storm_sockets=20,
            eta_documents=20,
            writers=2,
            writer_updates=20,
        )


@dataclass
class Context:
    endpoints: Endpoints
    sizes: Sizes
    log_dir: Path
    profile_dir: Path | None
    log: Log


def _spy(context: Context, pid: int, name: str) -> Spy | None:
    """Sample ``pid`` with py-spy into the profile directory, when profiling."""
    if context.profile_dir is None:
        return None
    return Spy(pid, context.profile_dir / f"{name}.txt")


def _unspy(spy: Spy | None) -> None:
    if spy is not None:
        spy.stop()


def _start_server(
    context: Context,
    workspace: Workspace,
    transport: str,
    name: str,
) -> Background:
    port = free_port()
    environ = workspace.environ(transport)
    # The fan-out and connection benchmarks open every socket as one user.
    command = ["serve", "--port", str(port), "--max-sockets-per-user", "1000000"]
    server = insighthub(name, command, environ, context.log_dir)
    server.port = port
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), f"{name} ready", 60, server)
    return server


def _start_relay(
    context: Context, workspace: Workspace, transport: str, name: str = ""
) -> Background:
    relay = insighthub(
        name or f"relay-{transport}",
        ["relay"],
        workspace.environ(transport, delivery="outbox"),
        context.log_dir,
    )
    wait_until(
        lambda: "relay started" in relay.log_path.read_text(errors="replace"),
        "the relay to start",
        60,
        relay,
    )
    return relay


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


# ---------------------------------------------------------------- 1 and 2, per transport


def pipeline(context: Context, transports: Sequence[str]) -> list[Row]:
    """Benchmarks 1 (updates/s against the raw floor) and 2 (commit → socket latency)."""
    return per_transport(
        context, transports, "1 updates/s", lambda transport: f"[1,2] {transport}", _pipeline_for
    )


def _pipeline_for(context: Context, workspace: Workspace, transport: str) -> list[Row]:
    rows: list[Row] = []
    if transport == "rabbitmq":
        rabbitmq_sink(context.endpoints.rabbitmq, workspace.namespace)
    relay: Background | None = None
    relay_problem = ""
    try:
        relay = _start_relay(context, workspace, transport)
    except Exception as exc:
        relay_problem = f"the relay did not start ({first_line(exc)})"
        if relay is not None:
            relay.stop()
        relay = None
    phases = "floor,direct" + (",outbox" if relay is not None else "")
    profile = str(context.profile_dir / f"updates-{transport}") if context.profile_dir else ""
    relay_spy = _spy(context, relay.pid, f"relay-{transport}") if relay is not None else None
    try:
        measured = processes.run_json(
            [
                PYTHON,
                "-m",
                "bench.loadgen",
                "throughput",
                "--namespace",
                workspace.namespace,
                "--count",
                str(context.sizes.updates),
                "--phases",
                phases,
                "--profile",
                profile,
            ],
            workspace.environ(transport),
            timeout=600,
        )
        _unspy(relay_spy)
        floor = measured["floor"]["per_second"]
        rows.append(
            Row(
                "1 updates/s",
                f"{transport} raw floor",
                "updates/s",
                floor,
                "raw floor",
                floor,
                extra={"cpu_ms_per_update": measured["floor"]["cpu_ms_per_update"]},
                note="psycopg UPDATE+COMMIT, then the raw client's confirmed publish",
            )
        )
        rows.append(
            Row(
                "1 updates/s",
                f"{transport} direct",
                "updates/s",
                measured["direct"]["per_second"],
                "raw floor",
                floor,
                "≥ 0.9× floor",
                0.9,
                extra={
                    "lost_events": measured["direct"]["lost_events"],
                    "cpu_ms_per_update": measured["direct"]["cpu_ms_per_update"],
                    "profile": f"bench/profiles/updates-{transport}-direct.txt",
                },
            )
        )
        rows.append(
            Row(
                "1 updates/s",
                f"{transport} direct: CPU per update",
                "ms CPU",
                measured["direct"]["cpu_ms_per_update"],
                "raw floor's CPU",
                measured["floor"]["cpu_ms_per_update"],
                "≤ 1.5× floor's CPU",
                1.5,
                lower_is_better=True,
                extra={"profile": f"bench/profiles/updates-{transport}-direct.txt"},
                note="process CPU time of the load generator per update",
            )
        )
        if "outbox" in measured:
            outbox = measured["outbox"]
            rows.append(
                Row(
                    "1 updates/s",
                    f"{transport} outbox",
                    "updates/s",
                    outbox["per_second"],
                    "raw floor",
                    floor,
                    "≥ 1.0× floor",
                    1.0,
                    extra={
                        "commit_only_per_second": outbox["count"] / outbox["commit_seconds"],
                        "cpu_ms_per_update": outbox["cpu_ms_per_update"],
                        "profile": f"bench/profiles/updates-{transport}-outbox.txt",
                    },
                    note="end to end: until the relay has published every event",
                )
            )
        else:
            rows.append(
                unavailable("1 updates/s", f"{transport} outbox", "updates/s", relay_problem)
            )
        rows += _latency(context, workspace, transport, relay, relay_problem)
    finally:
        if relay is not None:
            relay.stop()
    return rows


def _latency(
    context: Context,
    workspace: Workspace,
    transport: str,
    relay: Background | None,
    relay_problem: str,
) -> list[Row]:
    rows: list[Row] = []
    paced = max(10, round(200 * context.sizes.latency_seconds))
    phases = [("direct", "200/s"), ("direct", "saturation")]
    if relay is not None:
        phases += [("outbox", "200/s"), ("outbox", "saturation")]
    else:
        rows.append(unavailable("2 latency", f"{transport} outbox", "ms", relay_problem))
    labels = {f"{d}@{200 if p == '200/s' else 0}": (d, p) for d, p in phases}
    server = _start_server(context, workspace, transport, f"serve-{transport}")
    token = JwtIssuer(workspace.secret_key).issue(LATENCY_USER_ID, 3600)
    client = Conversation(
        [PYTHON, "-m", "bench.clients", "watch", "--port", str(server.port), "--token", token],
        workspace.environ(transport),
        context.log_dir,
    )
    try:
        client.read(60)
        with tempfile.TemporaryDirectory() as scratch:
            commits_path = Path(scratch) / "commits.json"
            received_path = Path(scratch) / "received.json"
            sent = processes.run_json(
                [
                    PYTHON,
                    "-m",
                    "bench.loadgen",
                    "latency",
                    "--phases",
                    ",".join(labels),
                    "--count",
                    str(paced),
                    "--burst",
                    str(context.sizes.saturation_updates),
                    "--out",
                    str(commits_path),
                ],
                workspace.environ(transport),
                timeout=900,
            )
            client.say({"collect": sent["commits"], "out": str(received_path), "idle": 5})
            client.read(120)
            commits = json.loads(commits_path.read_text())
            received = {(d, v): t for d, v, t in json.loads(received_path.read_text())}
    finally:
        client.close()
        server.stop()
    for label, (delivery, pace) in labels.items():
        mine = [(d, v, t) for phase, d, v, t in commits if phase == label]
        rows += _latency_row(transport, delivery, pace, mine, received, sent["phases"][label])
    return rows


def _latency_row(
    transport: str,
    delivery: str,
    pace: str,
    commits: list[tuple[int, int, float]],
    received: dict[tuple[int, int], float],
    sent: dict[str, Any],
) -> list[Row]:
    latencies = [(received[(d, v)] - at) * 1000 for d, v, at in commits if (d, v) in received]
    case = f"{transport} {delivery} @ {pace}"
    if not latencies:
        return [unavailable("2 latency", case, "ms", "no event reached the socket")]
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    extra = {
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(latencies),
        "mean_ms": statistics.fmean(latencies),
        "updates": len(commits),
        "delivered": len(latencies),
        "sent_per_second": sent["per_second"],
    }
    missing = len(commits) - len(latencies)
    note = f"{missing} of {len(commits)} updates not seen on the socket" if missing else ""
    if pace == "saturation":
        note = f"{sent['per_second']:,.0f} updates/s sent" + (f"; {note}" if note else "")
    limit: float | None = None
    target = ""
    if pace == "200/s" and delivery == "direct":
        limit, target = 5.0, "p99 ≤ 5 ms"
    elif pace == "200/s":
        limit, target = 10.0, "p99 ≤ 10 ms"
    applies = limit is not None
    rows = [
        Row(
            "2 latency",
            case,
            "p99 ms",
            p99,
            "target" if applies else "",
            limit if applies else None,
            target if applies else "",
            1.0 if applies else None,
            lower_is_better=True,
            extra=extra,
            note=note,
        )
    ]
    return rows


# ---------------------------------------------------------------- 3 and 4: sockets


def _start_peer(context: Context, kind: str, workspace: Workspace) -> Background:
    port = free_port()
    peer = processes.start(
        f"peer-{kind}",
        [
            PYTHON,
            "-m",
            "bench.peers",
            kind,
            "--port",
            str(port),
            "--redis-url",
            context.endpoints.redis,
            "--channel",
            _peer_channel(workspace, kind),
        ],
        workspace.environ("redis"),
        context.log_dir,
    )
    peer.port = port
    wait_until(lambda: _port_open(port), f"{kind} listening", 60, peer)
    time.sleep(0.3)  # its Redis subscription starts with the app
    return peer


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _sockets_client(
    context: Context,
    workspace: Workspace,
    kind: str,
    port: int,
    count: int,
) -> Conversation:
    token = JwtIssuer(workspace.secret_key).issue(FANOUT_USER_ID, 3600)
    return Conversation(
        [
            PYTHON,
            "-m",
            "bench.clients",
            "sockets",
            "--kind",
            kind,
            "--port",
            str(port),
            "--sockets",
            str(count),
            "--token",
            token,
            "--redis-url",
            context.endpoints.redis,
            "--channel",
            _peer_channel(workspace, kind),
            "--user",
            str(FANOUT_USER_ID),
        ],
        workspace.environ("redis"),
        context.log_dir,
    )


def _peer_channel(workspace: Workspace, kind: str) -> str:
    """The Redis channel a server listens on: each kind its own, so a burst reaches one only."""
    if kind == "insighthub":
        return f"{workspace.namespace}:status"
    return f"{workspace.namespace}-{kind}:status"


def fanout(context: Context) -> list[Row]:
    """Benchmark 3: deliveries/s to C sockets, the hub against bare Starlette and socket.io.

    The three servers run at once, each with its own sockets open; the bursts take turns
    (hub, bare, socket.io, then the next round), so a moment of load elsewhere on the machine
    falls on every kind alike. The figure is the median of the rounds, the spread their range.
    python-socketio is measured up to 1,000 sockets (the target's size; it is the slow peer).
    """
    rows: list[Row] = []
    with private_workspace(context.endpoints) as workspace:
        servers: dict[str, Background] = {}
        problems: dict[str, str] = {}
        for kind in ("insighthub", "bare", "socketio"):
            context.log(f"[3] fan-out: starting {kind}")
            try:
                servers[kind] = (
                    _start_server(context, workspace, "redis", "serve-fanout")
                    if kind == "insighthub"
                    else _start_peer(context, kind, workspace)
                )
            except Exception as exc:
                problems[kind] = first_line(exc)
        try:
            for sockets, events in context.sizes.fanout:
                kinds = [k for k in servers if k != "socketio" or sockets <= 1_000]
                rates, failed = _fanout_interleaved(
                    context, workspace, servers, kinds, sockets, events
                )
                rows += _fanout_rows(sockets, events, rates, {**problems, **failed})
        finally:
            for server in servers.values():
                server.stop()
    return rows


def _fanout_interleaved(
    context: Context,
    workspace: Workspace,
    servers: dict[str, Background],
    kinds: list[str],
    sockets: int,
    events: int,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    clients: dict[str, Conversation] = {}
    failed: dict[str, str] = {}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for kind in kinds:
            client = _sockets_client(context, workspace, kind, servers[kind].port, sockets)
            clients[kind] = client
            opened = client.read(600)
            if opened["connected"] < sockets or opened["greeted"] < sockets:
                failed[kind] = (
                    f"{opened['connected']}/{sockets} sockets opened, {opened['greeted']} "
                    f"greeted: {opened['errors']}"
                )
                continue
            client.say({"burst": 2, "timeout": 60})
            client.read(120)
        rounds = max(1, context.sizes.bursts)
        for round_number in range(rounds):
            for kind in kinds:
                if kind in failed:
                    continue
                spy = (
                    _spy(context, servers[kind].pid, f"fanout-{kind}-{sockets}")
                    if round_number == 0
                    else None
                )
                clients[kind].say({"burst": events, "timeout": 120})
                result = clients[kind].read(180)
                _unspy(spy)
                if result["delivered"] < result["expected"]:
                    failed[kind] = (
                        f"{result['delivered']} of {result['expected']} delivered "
                        f"({result['closed']} sockets closed)"
                    )
                    continue
                rates[kind].append(result["delivered"] / result["seconds"])
        for kind in kinds:
            if rates[kind]:
                shown = ", ".join(f"{r:,.0f}" for r in rates[kind])
                context.log(f"  {kind} × {sockets}: {shown} deliveries/s")
    except Exception as exc:
        for kind in kinds:
            failed.setdefault(kind, first_line(exc))
    finally:
        for client in clients.values():
            client.close()
    return {k: v for k, v in rates.items() if v and k not in failed}, failed


def _spread(rates: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "rounds": rates,
    }


def _fanout_rows(
    sockets: int, events: int, rates: dict[str, list[float]], problems: dict[str, str]
) -> list[Row]:
    rows: list[Row] = []
    shape = f"{sockets} sockets × {events} events"
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    for kind in ("bare", "socketio"):
        if kind == "socketio" and sockets > 1_000:
            continue
        if kind not in medians:
            why = problems.get(kind, "?")
            rows.append(unavailable("3 fan-out", f"{kind} {shape}", "deliveries/s", why))
            continue
        spread = _spread(rates[kind])
        rows.append(
            Row(
                "3 fan-out",
                f"{kind} {shape}",
                "deliveries/s",
                medians[kind],
                extra={"spread": spread},
                note=_spread_note(spread),
            )
        )
    if "insighthub" not in medians:
        why = problems.get("insighthub", "?")
        rows.append(unavailable("3 fan-out", f"hub {shape}", "deliveries/s", why))
        return rows
    spread = _spread(rates["insighthub"])
    profile = f"bench/profiles/fanout-insighthub-{sockets}.txt"
    rows.append(
        Row(
            "3 fan-out",
            f"hub {shape} vs bare Starlette",
            "deliveries/s",
            medians["insighthub"],
            "bare Starlette",
            medians.get("bare"),
            "≥ 0.95× bare",
            0.95,
            extra={"spread": spread, "profile": profile},
            note=_spread_note(spread),
        )
    )
    if sockets <= 1_000:
        rows.append(
            Row(
                "3 fan-out",
                f"hub {shape} vs python-socketio",
                "deliveries/s",
                medians["insighthub"],
                "python-socketio",
                medians.get("socketio"),
                "≥ 4× socketio",
                4.0,
                extra={"spread": spread, "profile": profile},
                note=_spread_note(spread),
            )
        )
    return rows


def _spread_note(spread: dict[str, Any]) -> str:
    return (
        f"median of {len(spread['rounds'])} interleaved rounds; "
        f"spread {spread['min']:,.0f}–{spread['max']:,.0f}"
    )


def connections(context: Context) -> list[Row]:
    """Benchmark 4: memory per idle socket and time to accept them, in one server process."""
    rows: list[Row] = []
    measured: dict[str, tuple[float, dict[str, Any]]] = {}
    count = context.sizes.connections
    with private_workspace(context.endpoints) as workspace:
        for kind in context.sizes.connection_peers:
            context.log(f"[4] {count} idle sockets on {kind}")
            try:
                server = (
                    _start_server(context, workspace, "redis", "serve-connections")
                    if kind == "insighthub"
                    else _start_peer(context, kind, workspace)
                )
            except Exception as exc:
                rows.append(unavailable("4 connections", kind, "KB/socket", first_line(exc)))
                continue
            try:
                time.sleep(0.5)
                before = processes.rss_bytes(server.pid)
                spy = _spy(context, server.pid, f"accept-{kind}-{count}")
                client = _sockets_client(context, workspace, kind, server.port, count)
                try:
                    opened = client.read(600)
                    _unspy(spy)
                    time.sleep(1.0)
                    after = processes.rss_bytes(server.pid)
                finally:
                    client.close()
            finally:
                server.stop()
            per_socket = (after - before) / max(1, opened["greeted"]) / 1024
            extra = {
                "sockets": count,
                "opened": opened["greeted"],
                "accept_seconds": opened["ready_seconds"],
                "handshake_seconds": opened["handshake_seconds"],
                "accepted_per_second": opened["greeted"] / opened["ready_seconds"],
                "rss_before_mb": before / 2**20,
                "rss_after_mb": after / 2**20,
                "errors": opened["errors"],
            }
            measured[kind] = (per_socket, extra)
    bare = measured.get("bare")
    for kind, (per_socket, extra) in measured.items():
        note = "" if extra["opened"] == count else f"only {extra['opened']} of {count} opened"
        if kind == "insighthub":
            rows.append(
                Row(
                    "4 connections",
                    f"server, {count} idle sockets",
                    "KB/socket",
                    per_socket,
                    "bare Starlette" if bare else "target",
                    bare[0] if bare else 40.0,
                    "≤ 1.1× bare Starlette's" if bare else "≤ 40 KB/socket",
                    1.1 if bare else 1.0,
                    lower_is_better=True,
                    extra={**extra, "profile": f"bench/profiles/accept-insighthub-{count}.txt"},
                    note=note,
                )
            )
            rows.append(
                Row(
                    "4 connections",
                    f"server, time to accept {count}",
                    "s",
                    extra["accept_seconds"],
                    extra=extra,
                )
            )
        else:
            rows.append(
                Row(
                    "4 connections",
                    f"bare Starlette (reference), {count} idle sockets",
                    "KB/socket",
                    per_socket,
                    extra=extra,
                    note=note,
                )
            )
    return rows


# ---------------------------------------------------------------- 5: workers


def corpus(count: int) -> list[tuple[str, bytes]]:
    """A fixed set of text documents (the same every run)."""
    words = (
        "status",
        "event",
        "worker",
        "queue",
        "socket",
        "version",
        "commit",
        "broker",
        "relay",
        "snapshot",
        "document",
        "workspace",
        "chunk",
        "embedding",
        "graph",
        "progress",
        "ready",
        "failed",
        "pending",
        "processing",
    )
    documents = []
    for n in range(count):
        paragraphs = []
        for p in range(24):
            sentence = " ".join(words[(n * 7 + p * 3 + k) % len(words)] for k in range(60))
            paragraphs.append(f"Section {p} of document {n}. {sentence}.")
        documents.append((f"corpus-{n:04d}.txt", "\n\n".join(paragraphs).encode()))
    return documents


def workers(context: Context) -> list[Row]:
    """Benchmark 5: documents/s through the pipeline with 1 and 2 worker processes."""
    rows: list[Row] = []
    rates: dict[int, float] = {}
    with private_workspace(context.endpoints) as workspace, tempfile.TemporaryDirectory() as files:
        environ = workspace.environ("rabbitmq", storage_dir=files)
        for count in context.sizes.worker_counts:
            context.log(f"[5] {count} worker process(es)")
            try:
                rates[count] = _worker_round(context, workspace, environ, count, files)
                context.log(f"  {rates[count]:.1f} documents/s")
            except Exception as exc:
                rows.append(
                    unavailable(
                        "5 workers", f"{count} × worker all", "documents/s", first_line(exc)
                    )
                )
    one = rates.get(1)
    for count, rate in sorted(rates.items()):
        rows.append(
            Row(
                "5 workers",
                f"{count} × worker all, {context.sizes.corpus} documents",
                "documents/s",
                rate,
                "1 worker",
                one,
            )
        )
    return rows


def _worker_round(
    context: Context, workspace: Workspace, environ: dict[str, str], count: int, files: str
) -> float:
    from adapters.container import build_container, close_container
    from domain.result import Err

    user_id = 4_400_000 + count
    health = [Path(files) / f"health-{count}-{n}" for n in range(count)]
    started = [
        insighthub(
            f"worker-{count}-{n}",
            ["worker", "all", "--health-file", str(path)],
            environ,
            context.log_dir,
        )
        for n, path in enumerate(health)
    ]
    container, _ = build_container(environ)
    database = psycopg.connect(libpq_url(workspace.database_url))
    try:
        for worker, path in zip(started, health, strict=True):
            wait_until(path.exists, f"{worker.name} to take work", 60, worker)
        created = container.workspaces().create(user_id=user_id, name=f"corpus {count}")
        if isinstance(created, Err):
            raise RuntimeError(f"workspace refused: {created.error}")
        workspace_id = created.value.id

        def provisioned() -> bool:
            row = database.execute(
                "SELECT status FROM workspaces WHERE id = %s", (workspace_id,)
            ).fetchone()
            database.commit()
            return row is not None and row[0] == "ready"

        wait_until(provisioned, "the workspace to be provisioned", 60, started[0])
        documents = container.documents()
        begun = time.perf_counter()
        for filename, content in corpus(context.sizes.corpus):
            uploaded = documents.upload(
                user_id=user_id, workspace_id=workspace_id, filename=filename, content=[content]
            )
            if isinstance(uploaded, Err):
                raise RuntimeError(f"upload refused: {uploaded.error}")

        def finished() -> bool:
            row = database.execute(
                "SELECT count(*) FROM documents WHERE user_id = %s "
                "AND processing_status IN ('ready', 'failed')",
                (user_id,),
            ).fetchone()
            database.commit()
            return row is not None and row[0] >= context.sizes.corpus

        wait_until(finished, "every document to be processed", 900, started[0])
        elapsed = time.perf_counter() - begun
        failed = database.execute(
            "SELECT count(*) FROM documents WHERE user_id = %s AND processing_status = 'failed'",
            (user_id,),
        ).fetchone()
        if failed and failed[0]:
            raise RuntimeError(f"{failed[0]} documents failed")
        return context.sizes.corpus / elapsed
    finally:
        database.close()
        close_container(container)
        for worker in started:
            worker.stop()


BENCHMARKS: dict[str, Callable[[Context, Sequence[str]], list[Row]]] = {
    "pipeline": pipeline,
    "fanout": lambda context, transports: fanout(context),
    "connections": lambda context, transports: connections(context),
    "workers": lambda context, transports: workers(context),
    "adversarial": lambda context, transports: adversarial(*context.sizes.adversarial_text),
    "reconnect": lambda context, transports: reconnect(context),
    "eta": lambda context, transports: eta(context.sizes.eta_documents, context.log),
    "writers": concurrent_writers,
    "overhead": lambda context, transports: worker_overhead(context),
}
