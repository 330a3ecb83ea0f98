"""The targets the suite is judged by: each one's rows, and what explains a miss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results import Row


@dataclass(frozen=True)
class Target:
    """One target; ``rows`` picks the rows that decide it, all of which must meet theirs."""

    text: str
    rows: Callable[[Row], bool]
    # Why the target is missed where it is (what the profiles named in the rows show).
    why: str = ""
    # How many rows a complete run has for it (fewer: part of it was not measured).
    expected: int = 1


def _updates(suffix: str) -> Callable[[Row], bool]:
    return lambda row: row.benchmark == "1 updates/s" and row.case.endswith(suffix)


def _latency(delivery: str) -> Callable[[Row], bool]:
    return lambda row: (
        row.benchmark == "2 latency" and f" {delivery} @ 200/s" in row.case and bool(row.target)
    )


def _writers(kind: str) -> Callable[[Row], bool]:
    def pick(row: Row) -> bool:
        if row.benchmark != "8 concurrent writers" or " outbox" not in row.case:
            return False
        if kind == "rate":
            return row.metric == "updates/s"
        return row.case.endswith(kind)

    return pick


def _writers_order(row: Row) -> bool:
    return row.benchmark == "8 concurrent writers" and row.case.endswith("events in order")


TARGETS: tuple[Target, ...] = (
    Target(
        "`direct` ≥ 0.9× the raw floor on RabbitMQ, NATS and Redis",
        _updates(" direct"),
        "the status change is one autocommitted statement on PostgreSQL (UPDATE, cursor bump "
        "and history insert as CTEs): one round trip where the floor pays two, so what keeps "
        "`direct` below the floor is its CPU per update (the next target), which on two cores "
        "shared with the servers is wall time too. On NATS every publish also hops to the "
        "client's event-loop thread and back (`NatsConnection.call`): about 110 µs of CPU for "
        "an empty call and 140 µs more for a publish and flush than on the caller's own loop, "
        "the price of one client shared with subscriptions, heartbeats and reconnects: see "
        "the `updates-<transport>-direct` profiles",
        expected=3,
    ),
    Target(
        "`direct`: CPU per update ≤ 1.5× the floor's",
        _updates("direct: CPU per update"),
        "the floor runs a prepared `UPDATE … SET version = version + 1` and publishes a body "
        "encoded once; each change also checks the lifecycle, writes its history row and "
        "takes a cursor position in the same statement, turns the returned row into the "
        "entity (its progress and metadata JSON decoded), builds and encodes the status "
        "event, and checks a connection out of the pool and back; on NATS the thread hop "
        "of the previous target: the `updates-<transport>-direct` profiles",
        expected=3,
    ),
    Target(
        "`outbox`, one writer: ≥ 1.0× the raw floor, end to end until the relay published all",
        _updates(" outbox"),
        "the writer sends BEGIN with the status statement and the outbox INSERT with the "
        "COMMIT (two pipelined round trips, the floor's count) but pays the direct path's CPU "
        "plus the outbox row's, and the relay's claim, publish and mark-sent take the same "
        "two cores; one writer cannot gain from the asynchronous publish while the CPU, not "
        "the broker's answer, is what it waits for: `updates-<transport>-outbox`, "
        "`relay-<transport>`",
        expected=3,
    ),
    Target(
        "`outbox`, 8 concurrent writers: ≥ 3× the single-writer raw floor, end to end",
        _writers("rate"),
        "every change takes the next position on the change cursor, one row locked from the "
        "status statement until COMMIT (including the WAL flush), so the writers' changes "
        "commit one at a time; the cursor keeps resume exact (docs/api.md), and a lock-free "
        "cursor needs a migration (positions from a sequence, readers bounded by the oldest "
        "open writer's transaction id). The row's note also gives what one update cost the "
        "whole machine (writers, relays, server, database, broker) and so the most its cores "
        "could do if nothing but the CPU limited them: where that ceiling is below 3× the "
        "floor, no locking scheme reaches the target on this machine: "
        "`writers-relay-<transport>`",
        expected=6,
    ),
    Target(
        "`outbox`, 8 concurrent writers: relay backlog bounded (drained ≤ 1 s after the last "
        "commit)",
        _writers("relay backlog drained"),
        "the relays claim up to 200 rows a turn; a miss means they fell behind the writers "
        "on the shared CPU: `writers-relay-<transport>`",
        expected=6,
    ),
    Target(
        "8 concurrent writers: per-entity order kept and nothing lost (checked in the run)",
        _writers_order,
        "an event missing or out of order on the watching socket",
        expected=12,
    ),
    Target(
        "latency at 200 updates/s: p99 ≤ 5 ms `direct`, on every transport",
        _latency("direct"),
        "the p99 is set by the moments the shared machine's other work takes the CPU; "
        "compare the p50 in the row's note",
        expected=3,
    ),
    Target(
        "latency at 200 updates/s: p99 ≤ 10 ms `outbox`, on every transport",
        _latency("outbox"),
        "the relay wakes on NOTIFY, claims, publishes and marks sent before the event "
        "reaches the hub: two more hops than `direct`; `relay-<transport>`",
        expected=3,
    ),
    Target(
        "fan-out ≥ 0.95× bare Starlette at 200, 1,000 and 10,000 sockets (median of "
        "interleaved runs)",
        lambda row: row.benchmark == "3 fan-out" and row.baseline == "bare Starlette",
        "the hub decodes and checks each event once on the bridge, routes it to its user's "
        "sockets and checks each socket's version gate and scope before writing the frame "
        "(directly, or behind a socket's backlog); bare Starlette forwards the bytes it was "
        "given: `fanout-insighthub-<sockets>` against `fanout-bare-<sockets>`",
        expected=3,
    ),
    Target(
        "fan-out ≥ 4× python-socketio at 1,000 sockets",
        lambda row: (
            row.benchmark == "3 fan-out"
            and row.baseline == "python-socketio"
            and row.case.startswith("hub 1000 ")
        ),
        "`fanout-insighthub-1000` against `fanout-socketio-1000`",
    ),
    Target(
        "idle socket memory ≤ 1.1× bare Starlette's at 10,000 sockets",
        lambda row: (
            row.benchmark == "4 connections" and row.metric == "KB/socket" and bool(row.target)
        ),
        "beside what uvicorn and Starlette hold for any WebSocket, each socket keeps its "
        "handler's frames (the read loop, the token-expiry timer), its `Connection` (user, "
        "scopes, version gate) and the frames of the middleware a bare endpoint lacks "
        "(tracing): `accept-insighthub-<sockets>`",
    ),
    Target(
        "worker overhead ≤ 10% of a document's CPU time in every stage",
        lambda row: row.benchmark == "9 worker overhead",
        "for small text documents the steps are cheap (a few ms) while every step start and "
        "end is a status change (one statement and an event), a stage hand-off is a publish "
        "and an acknowledgement, and a lease is taken and renewed: a fixed cost of a few ms "
        "per stage that a larger document amortises. The row's note counts the stage's "
        "status changes per document and their CPU: the seed announces every step, so even "
        "at the raw floor's CPU per change (benchmark 1) three changes take ~1 ms, a quarter "
        "of a 4 ms stage, before any lease or hand-off",
        expected=2,
    ),
    Target(
        "reconnect: every target of the reconnect benchmark (bench/reconnect.py)",
        lambda row: row.benchmark == "6 reconnect" and bool(row.target),
        "see the row's note",
    ),
    Target(
        "adversarial input: every target of the adversarial-text benchmark (bench/adversarial.py)",
        lambda row: row.benchmark == "6 adversarial text" and bool(row.target),
        "see the row's note",
    ),
)


def verdict(target: Target, rows: list[Row]) -> tuple[str, str]:
    """``(verdict, detail)`` of ``target`` over a run's rows."""
    chosen = [row for row in rows if target.rows(row)]
    missed = [row for row in chosen if row.met is False]
    unmeasured = [row for row in chosen if row.met is None]
    if missed:
        cases = "; ".join(_miss(row) for row in missed)
        return "NOT met", f"{cases}. Why: {target.why}"
    if not chosen or unmeasured:
        what = ", ".join(row.case for row in unmeasured) or "no row in this run"
        return "not measured", what
    if len(chosen) < target.expected:
        return "met where measured", f"{len(chosen)} of {target.expected} cases ran"
    return "met", f"{len(chosen)} case{'s' if len(chosen) > 1 else ''}"


def _miss(row: Row) -> str:
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "?"
    profile = row.extra.get("profile")
    shown = f" (profile {profile})" if profile else ""
    return f"{row.case}: {ratio} against {row.target}{shown}"


def targets_table(rows: list[Row]) -> str:
    """Every target with its verdict, as a Markdown table."""
    lines = ["| target | verdict | detail |", "|---|---|---|"]
    for target in TARGETS:
        judged, detail = verdict(target, rows)
        lines.append(f"| {target.text} | {judged} | {detail.replace('|', '/')} |")
    return "\n".join(lines)
