"""The peers the fan-out is measured against, fed from the same Redis channel as the bridge.

``bare``: a plain Starlette WebSocket endpoint that forwards every message to every socket
(the floor: no routing, no per-socket queue, no ordering). ``socketio``: python-socketio's
ASGI server emitting every message to every client. Both run under uvicorn, like the server.
Usage: ``python -m bench.peers bare --port 8123 --channel NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

Forward = Callable[[str], Awaitable[None]]


async def listen(redis_url: str, channel: str, forward: Forward) -> None:
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    try:
        async for message in pubsub.listen():
            if message["type"] == "message":
                await forward(message["data"].decode())
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


def bare_app(redis_url: str, channel: str) -> Starlette:
    sockets: set[WebSocket] = set()

    async def broadcast(text: str) -> None:
        for socket in list(sockets):
            try:
                await socket.send_text(text)
            except Exception:  # a socket that went away just leaves the set
                sockets.discard(socket)

    async def endpoint(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text('{"type":"hello"}')
        sockets.add(socket)
        try:
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sockets.discard(socket)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(listen(redis_url, channel, broadcast))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return Starlette(
        routes=[Route("/healthz", healthz), WebSocketRoute("/ws", endpoint)], lifespan=lifespan
    )


def socketio_app(redis_url: str, channel: str) -> Any:
    import socketio  # type: ignore[import-untyped]

    server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    tasks: list[asyncio.Task[None]] = []

    async def broadcast(text: str) -> None:
        await server.emit("status", text)

    async def startup() -> None:
        tasks.append(asyncio.create_task(listen(redis_url, channel, broadcast)))

    return socketio.ASGIApp(server, on_startup=startup)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers")
    parser.add_argument("kind", choices=("bare", "socketio"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", required=True)
    args = parser.parse_args(argv)
    build = bare_app if args.kind == "bare" else socketio_app
    uvicorn.run(
        build(args.redis_url, args.channel),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="on",
        ws_max_size=64 * 1024,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
