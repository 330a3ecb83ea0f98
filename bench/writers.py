"""Benchmark 8: 8 concurrent writers on documents of their own, end to end, order checked.

Per transport, the writers (threads of one process, or processes of their own) update
different documents with ``direct`` and with ``outbox`` delivery; with outbox, several
``insighthub relay`` processes publish side by side (SKIP LOCKED claims, per-entity order).
The clock stops when the last event is published. A WebSocket watching the writers' user
checks every document's events arrive in version order, and none is missing; the outbox's
unsent rows (the relays' backlog) are sampled during the run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.auth.jwt_tokens import JwtIssuer
from bench import processes
from bench.processes import Background, Conversation
from bench.results import Row
from bench.services import Workspace, per_transport, rabbitmq_sink

if TYPE_CHECKING:
    from bench.suite import Context

PYTHON = sys.executable
WRITERS_USER_ID = 4_200_000  # bench.loadgen's documents belong to this user
BENCHMARK = "8 concurrent writers"


def concurrent_writers(context: Context, transports: Sequence[str]) -> list[Row]:
    """Rows for every transport, delivery and mode, against the single-writer raw floor."""
    return per_transport(
        context,
        transports,
        BENCHMARK,
        lambda transport: f"[8] {context.sizes.writers} writers on {transport}",
        _writers_for,
    )


def _writers_for(context: Context, workspace: Workspace, transport: str) -> list[Row]:
    from bench.suite import _start_relay, _start_server, _unspy

    if transport == "rabbitmq":
        rabbitmq_sink(context.endpoints.rabbitmq, workspace.namespace)
    environ = workspace.environ(transport)
    floor = processes.run_json(
        [
            PYTHON,
            "-m",
            "bench.loadgen",
            "throughput",
            "--namespace",
            workspace.namespace,
            "--count",
            str(context.sizes.writer_updates),
            "--phases",
            "floor",
        ],
        environ,
        timeout=300,
    )["floor"]["per_second"]
    relays: list[Background] = []
    server = _start_server(context, workspace, transport, f"serve-writers-{transport}")
    token = JwtIssuer(workspace.secret_key).issue(WRITERS_USER_ID, 3600)
    watch = Conversation(
        [PYTHON, "-m", "bench.clients", "watch", "--port", str(server.port), "--token", token],
        environ,
        context.log_dir,
    )
    rows: list[Row] = []
    try:
        watch.read(60)
        for n in range(context.sizes.relays):
            relays.append(_start_relay(context, workspace, transport, f"relay-{transport}-{n}"))
        for delivery in ("direct", "outbox"):
            for mode in ("threads", "processes"):
                spy = None
                if delivery == "outbox" and mode == "processes" and relays:
                    from bench.suite import _spy

                    spy = _spy(context, relays[0].pid, f"writers-relay-{transport}")
                try:
                    rows += _one_run(context, environ, watch, transport, delivery, mode, floor)
                finally:
                    _unspy(spy)
    finally:
        watch.close()
        server.stop()
        for relay in relays:
            relay.stop()
    return rows


def _one_run(
    context: Context,
    environ: dict[str, str],
    watch: Conversation,
    transport: str,
    delivery: str,
    mode: str,
    floor: float,
) -> list[Row]:
    writers = context.sizes.writers
    case = f"{transport} {delivery}, {writers} {mode}"
    per_writer = max(1, context.sizes.writer_updates // writers)
    measured = processes.run_json(
        [
            PYTHON,
            "-m",
            "bench.loadgen",
            "writers",
            "--writers",
            str(writers),
            "--mode",
            mode,
            "--delivery",
            delivery,
            "--count",
            str(per_writer),
        ],
        environ,
        timeout=900,
    )
    documents = set(measured.pop("documents"))
    # Each writer's warm-up update is watched too; with outbox delivery so are the documents'
    # creation and first move to processing (versions 1 and 2), which the order check skips.
    expected = writers * per_writer + writers
    preparation = 2 * len(documents) if delivery == "outbox" else 0
    with tempfile.TemporaryDirectory() as scratch:
        received_path = Path(scratch) / "received.json"
        watch.say({"collect": expected + preparation, "out": str(received_path), "idle": 5})
        watch.read(180)
        received = json.loads(received_path.read_text())
    order = check_order([(d, v) for d, v, _ in received if d in documents and v > 2])
    context.log(
        f"  {case}: {measured['per_second']:,.0f} updates/s end to end, "
        f"backlog ≤ {measured['backlog_max']}, {order['out_of_order']} out of order, "
        f"{expected - order['events']} missing"
    )
    extra: dict[str, Any] = {
        **{k: v for k, v in measured.items() if k != "documents"},
        **order,
        "expected": expected,
        "relays": context.sizes.relays if delivery == "outbox" else 0,
    }
    # The most the machine could do if the CPU were the only limit: every core busy with
    # the updates, at what one update cost all processes together in this run.
    cores = os.cpu_count() or 1
    machine_ms = measured["machine_cpu_ms_per_update"]
    if machine_ms > 0:
        ceiling = 1000 * cores / machine_ms
        extra["cpu_bound_ceiling_per_second"] = ceiling
        budget = (
            f"machine CPU {machine_ms:.2f} ms/update (all processes): at most {ceiling:,.0f}/s "
            f"on {cores} cores = {ceiling / floor:.2f}× floor"
        )
    else:  # a run too short for the kernel's CPU clock to tick (a smoke run)
        budget = "machine CPU too short to measure"
    note = (
        f"backlog max {measured['backlog_max']}, {measured['drain_seconds']:.2f} s to drain "
        f"after the last commit; {context.sizes.relays} relays; {budget}"
        if delivery == "outbox"
        else f"publishes synchronously: no backlog; {budget}"
    )
    outbox = delivery == "outbox"
    rows = [
        Row(
            BENCHMARK,
            case,
            "updates/s",
            measured["per_second"],
            "1-writer raw floor",
            floor,
            "≥ 3× floor" if outbox else "",
            3.0 if outbox else None,
            extra=extra,
            note=note,
        ),
        Row(
            BENCHMARK,
            f"{case}: events in order",
            "share",
            (order["events"] - order["out_of_order"]) / expected,
            "every event, in version order",
            1.0,
            "all, in order",
            1.0,
            note=f"{order['events']} of {expected} seen, {order['out_of_order']} out of order",
        ),
    ]
    if outbox:
        rows.append(
            Row(
                BENCHMARK,
                f"{case}: relay backlog drained",
                "s",
                measured["drain_seconds"],
                "target",
                1.0,
                "≤ 1 s after the last commit",
                1.0,
                lower_is_better=True,
                note=f"backlog max {measured['backlog_max']} rows",
            )
        )
    return rows


def check_order(events: list[tuple[int, int]]) -> dict[str, int]:
    """How many events arrived, and how many not above their document's previous version."""
    last: dict[int, int] = {}
    out_of_order = 0
    for document_id, version in events:
        if version <= last.get(document_id, -1):
            out_of_order += 1
        else:
            last[document_id] = version
    return {"events": len(events), "out_of_order": out_of_order}
