"""Socket clients in a process of their own, driven by JSON lines on stdin.

``watch``: one browser-protocol socket on ``insighthub serve``; records when each status frame
arrives. ``sockets``: many sockets on a server (``insighthub``, ``bare`` Starlette or
``socketio``); reports how long they took to open, and on request publishes a burst of status
events to the broadcast and counts the deliveries. Every answer is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.wsclient import RawWebSocket, connect, connect_many
from domain.events import DocumentStatusUpdated, encode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus


def say(answer: dict[str, Any]) -> None:
    print(json.dumps(answer), flush=True)


async def commands() -> Any:
    """The next command from stdin; ``None`` when stdin closes."""
    line = await asyncio.to_thread(sys.stdin.readline)
    return json.loads(line) if line.strip() else None


async def watch(args: argparse.Namespace) -> None:
    received: list[tuple[int, int, float]] = []
    ready = asyncio.Event()
    arrived = asyncio.Event()

    def on_frame(socket: RawWebSocket, payload: bytes, now: float) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "snapshot":
            ready.set()
        elif frame.get("type") == "document_status":
            data = frame["data"]
            received.append((data["document_id"], data["version"], now))
            arrived.set()

    socket = await connect("127.0.0.1", args.port, f"/ws?token={args.token}", on_frame)
    await asyncio.wait_for(ready.wait(), 30)
    say({"ready": True})
    while (command := await commands()) is not None:
        if "collect" in command:
            expected, idle = int(command["collect"]), float(command.get("idle", 5.0))
            while len(received) < expected:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), idle)
                except TimeoutError:
                    break
            Path(command["out"]).write_text(json.dumps(received))
            say({"received": len(received)})
            received.clear()
    socket.close()


class Burst:
    """Status events for one user and document, with ever-increasing versions."""

    def __init__(self, user_id: int, document_id: int) -> None:
        self._user_id = user_id
        self._document_id = document_id
        self._version = 1_000

    def bodies(self, count: int) -> list[bytes]:
        bodies = []
        for _ in range(count):
            self._version += 1
            bodies.append(
                encode(
                    DocumentStatusUpdated(
                        document_id=self._document_id,
                        user_id=self._user_id,
                        workspace_id=1,
                        filename="fan-out.txt",
                        status=DocumentProcessingStatus.PROCESSING,
                        error=None,
                        chunk_count=0,
                        metadata={},
                        progress=Progress.plan(["Parsing", "Chunking text"]),
                        version=self._version,
                    )
                )
            )
        return bodies


def redis_publisher(url: str, channel: str) -> Callable[[list[bytes]], None]:
    import redis

    client = redis.Redis.from_url(url)

    def publish(bodies: list[bytes]) -> None:
        pipeline = client.pipeline(transaction=False)
        for body in bodies:
            pipeline.publish(channel, body)
        pipeline.execute()

    return publish


async def sockets(args: argparse.Namespace) -> None:
    counted = 0
    greeted = 0
    target = -1
    last_at = 0.0
    all_in = asyncio.Event()
    everyone_greeted = asyncio.Event()
    # The first frame each server sends says the socket is fully set up: the snapshot
    # (insighthub), a hello (bare Starlette), or the namespace confirmation (socket.io).
    greeted_sockets: set[int] = set()
    socketio = args.kind == "socketio"

    def on_frame(socket: RawWebSocket, payload: bytes, now: float) -> None:
        nonlocal counted, greeted, last_at
        if socketio:
            if payload[:1] == b"0":
                socket.send_text("40")
                return
            if payload == b"2":
                socket.send_text("3")
                return
            if payload[:2] == b"40":
                greeted += 1
                if greeted == args.sockets:
                    everyone_greeted.set()
                return
        elif id(socket) not in greeted_sockets:
            greeted_sockets.add(id(socket))
            greeted += 1
            if greeted == args.sockets:
                everyone_greeted.set()
            return
        counted += 1
        last_at = now
        if counted == target:
            all_in.set()

    path = {
        "insighthub": f"/ws?token={args.token}",
        "bare": "/ws",
        "socketio": "/socket.io/?EIO=4&transport=websocket",
    }[args.kind]
    started = time.perf_counter()
    opened, errors = await connect_many(
        args.sockets, "127.0.0.1", args.port, path, on_frame, in_flight=args.in_flight
    )
    handshakes = time.perf_counter() - started
    if len(opened) == args.sockets:
        try:
            await asyncio.wait_for(everyone_greeted.wait(), args.ready_timeout)
        except TimeoutError:
            errors.append(f"only {greeted} of {args.sockets} sockets got their first frame")
    say(
        {
            "connected": len(opened),
            "greeted": greeted,
            "handshake_seconds": handshakes,
            "ready_seconds": time.perf_counter() - started,
            "errors": errors[:5],
            "error_count": len(errors),
        }
    )
    burst = Burst(args.user, args.document)
    publish = redis_publisher(args.redis_url, args.channel) if args.channel else None
    while (command := await commands()) is not None:
        if "burst" in command and publish is not None:
            events = int(command["burst"])
            bodies = burst.bodies(events)
            counted, target, last_at = 0, events * len(opened), 0.0
            all_in.clear()
            began = time.time()
            await asyncio.to_thread(publish, bodies)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), float(command.get("timeout", 60)))
            say(
                {
                    "delivered": counted,
                    "expected": target,
                    "seconds": (last_at or time.time()) - began,
                    "closed": sum(1 for s in opened if s.closed.done()),
                }
            )
    for socket in opened:
        socket.close()
    await asyncio.sleep(0.2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    modes = parser.add_subparsers(dest="mode", required=True)
    watcher = modes.add_parser("watch")
    watcher.add_argument("--port", type=int, required=True)
    watcher.add_argument("--token", required=True)
    many = modes.add_parser("sockets")
    many.add_argument("--kind", choices=("insighthub", "bare", "socketio"), required=True)
    many.add_argument("--port", type=int, required=True)
    many.add_argument("--sockets", type=int, required=True)
    many.add_argument("--token", default="")
    many.add_argument("--in-flight", type=int, default=200)
    many.add_argument("--ready-timeout", type=float, default=120.0)
    many.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    many.add_argument("--channel", default="")
    many.add_argument("--user", type=int, default=0)
    many.add_argument("--document", type=int, default=1)
    args = parser.parse_args(argv)
    asyncio.run(watch(args) if args.mode == "watch" else sockets(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
