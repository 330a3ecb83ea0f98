"""The load run: many concurrent sockets across several users while workers process a stream.

A real deployment (``serve``, two ``worker all``, ``relay`` on PostgreSQL and the transport
``LOAD_TRANSPORT``, RabbitMQ by default) is fed uploads at a steady rate for ``LOAD_SECONDS``
while ``LOAD_SOCKETS`` browser-protocol sockets, spread over ``LOAD_USERS`` users, all listen
on one asyncio loop. It checks that the server's resident memory stays bounded, that every
socket received every status change of its user committed after its snapshot, and that every
socket ends showing exactly the database. Loopback only; counts and duration are bounded by
the environment variables above.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.faults.harness import Deployment
from tests.support.ws_client import EntityKey, Shown

# Growth of the server's resident memory, after warm-up, that still counts as bounded.
RSS_GROWTH_LIMIT_MB = 150.0


@dataclass
class SocketRecord:
    user: int
    view: dict[EntityKey, Shown] = field(default_factory=dict)
    snapshot_versions: dict[EntityKey, int] = field(default_factory=dict)
    received: set[tuple[str, int, int]] = field(default_factory=set)
    frames: int = 0
    duplicates: int = 0
    closed: bool = False


@dataclass
class LoadSummary:
    sockets: int
    users: int
    seconds: float
    uploads: int
    committed: int
    frames: int
    missed_events: int
    sockets_missing_events: int
    sockets_closed: int
    sockets_differing: int
    rss_mb: list[float]

    @property
    def rss_growth_mb(self) -> float:
        if len(self.rss_mb) < 4:
            return 0.0
        warm = self.rss_mb[len(self.rss_mb) // 4]
        return max(self.rss_mb[len(self.rss_mb) // 4 :]) - warm

    @property
    def holds(self) -> bool:
        return (
            self.missed_events == 0
            and self.sockets_closed == 0
            and self.sockets_differing == 0
            and self.rss_growth_mb <= RSS_GROWTH_LIMIT_MB
        )

    def lines(self) -> list[str]:
        samples = ", ".join(f"{mb:.0f}" for mb in self.rss_mb)
        return [
            f"- {self.sockets} sockets over {self.users} users, {self.seconds:.0f} s of "
            f"uploads ({self.uploads} documents, {self.committed} status changes committed)",
            f"- frames delivered: {self.frames}; events missed by a socket: "
            f"**{self.missed_events}** ({self.sockets_missing_events} sockets); sockets closed "
            f"by the server: {self.sockets_closed}",
            f"- sockets whose final view differs from the database: **{self.sockets_differing}**",
            f"- server resident memory (MB, sampled): {samples}; growth after warm-up "
            f"{self.rss_growth_mb:.0f} MB (bound {RSS_GROWTH_LIMIT_MB:.0f} MB)",
            f"- holds: {'yes' if self.holds else '**NO**'}",
        ]


def _apply(record: SocketRecord, frame: dict[str, Any]) -> None:
    if frame["type"] == "snapshot":
        for document in frame["documents"]:
            key: EntityKey = ("document", document["id"])
            record.view[key] = (document["version"], document["processing_status"])
        for workspace in frame["workspaces"]:
            key = ("workspace", workspace["id"])
            record.view[key] = (workspace["version"], workspace["status"])
        if not record.snapshot_versions:
            record.snapshot_versions = {k: v[0] for k, v in record.view.items()}
        return
    data = frame["data"]
    entity: EntityKey = (
        ("document", data["document_id"])
        if frame["type"] == "document_status"
        else ("workspace", data["workspace_id"])
    )
    record.frames += 1
    record.received.add((*entity, data["version"]))
    held = record.view.get(entity)
    if held is not None and data["version"] <= held[0]:
        record.duplicates += 1
        return
    record.view[entity] = (data["version"], data["status"])


async def _listen(url: str, record: SocketRecord, connected: asyncio.Event) -> None:
    try:
        async with connect(url, max_size=None, open_timeout=60, ping_interval=None) as ws:
            first = await ws.recv()
            _apply(record, json.loads(first))
            connected.set()
            await _read(ws, record)
    except Exception:  # any end of the socket before the run's end is a closed socket
        connected.set()
    record.closed = True


async def _read(ws: ClientConnection, record: SocketRecord) -> None:
    async for raw in ws:
        _apply(record, json.loads(raw))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_load(
    sockets: int | None = None, users: int | None = None, seconds: float | None = None
) -> LoadSummary:
    sockets = sockets or int(os.environ.get("LOAD_SOCKETS", "1000"))
    users = users or int(os.environ.get("LOAD_USERS", "10"))
    seconds = seconds or float(os.environ.get("LOAD_SECONDS", "120"))
    with Deployment(os.environ.get("LOAD_TRANSPORT", "rabbitmq")) as d:
        server = d.server()
        d.worker()
        d.worker()
        d.relay()
        people = [d.new_user() for _ in range(users)]
        targets = [(user, d.ready_workspace(server, user)) for user in people]
        records = [SocketRecord(people[n % users]) for n in range(sockets)]
        return asyncio.run(_run(d, server, targets, records, seconds, sockets, users))


async def _run(
    d: Deployment,
    server: Any,
    targets: list[tuple[int, int]],
    records: list[SocketRecord],
    seconds: float,
    sockets: int,
    users: int,
) -> LoadSummary:
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, len(records), 50):
        batch = []
        for record in records[start : start + 50]:
            connected = asyncio.Event()
            url = f"ws://127.0.0.1:{server.port}/ws?token={server.token(record.user)}"
            tasks.append(asyncio.create_task(_listen(url, record, connected)))
            batch.append(connected.wait())
        await asyncio.wait_for(asyncio.gather(*batch), 120)
    rss: list[float] = [_rss_mb(server.process.pid)]
    uploads = [0]
    stop = threading.Event()

    def stream() -> None:
        n = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop.is_set():
            user, workspace_id = targets[n % len(targets)]
            if d.upload(server, user, workspace_id, n) is not None:
                uploads[0] += 1
            n += 1
            time.sleep(0.3)

    streaming = asyncio.create_task(asyncio.to_thread(stream))
    while not streaming.done():
        await asyncio.sleep(5)
        rss.append(_rss_mb(server.process.pid))
    started = time.monotonic()
    while time.monotonic() - started < 120:
        if (
            d.unsettled() == 0
            and d.unsent() == 0
            and all(r.view == d.db_view(r.user) for r in records[: len(targets)])
        ):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(3)  # the last frames of the slowest sockets
    rss.append(_rss_mb(server.process.pid))
    truth = {user: d.db_view(user) for user, _ in targets}
    committed = {
        user: {(k[0], k[1], v) for k, shown in view.items() for v in range(1, shown[0] + 1)}
        for user, view in truth.items()
    }
    missed_total = 0
    missing_sockets = 0
    for record in records:
        expected = {
            event
            for event in committed[record.user]
            if event[2] > record.snapshot_versions.get((event[0], event[1]), 0)
        }
        missed = len(expected - record.received)
        missed_total += missed
        missing_sockets += 1 if missed else 0
    closed = sum(1 for record in records if record.closed)
    differing = sum(1 for record in records if record.view != truth[record.user])
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return LoadSummary(
        sockets=sockets,
        users=users,
        seconds=seconds,
        uploads=uploads[0],
        committed=sum(len(c) for c in committed.values()),
        frames=sum(r.frames for r in records),
        missed_events=missed_total,
        sockets_missing_events=missing_sockets,
        sockets_closed=closed,
        sockets_differing=differing,
        rss_mb=rss,
    )
