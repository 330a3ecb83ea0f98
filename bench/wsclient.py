"""A minimal WebSocket client for load generation: thousands of sockets in one process.

General-purpose clients parse every frame through several layers; at 100,000 frames per
second the client, not the server under test, would become what is measured. This one does
the opening handshake, answers pings and close frames, and hands each text frame's payload
and arrival time to a callback, nothing more (no fragmentation, no extensions).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

FrameCallback = Callable[["RawWebSocket", bytes, float], None]

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame (an all-zero mask leaves the payload as it is, which servers accept)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + _ZERO_MASK + payload


class RawWebSocket(asyncio.Protocol):
    """One client socket; ``opened`` resolves after the handshake, ``closed`` when it ends."""

    def __init__(self, host: str, port: int, path: str, on_frame: FrameCallback) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: "
            f"{base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._on_frame = on_frame
        self._buffer = bytearray()
        self._upgraded = False
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.frames = 0
        self.status_line = ""
        # When the handshake's answer arrived (time.time()).
        self.upgraded_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before upgrade: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).decode("latin-1")
            del self._buffer[: end + 4]
            self.status_line = head.split("\r\n", 1)[0]
            if " 101 " not in self.status_line + " ":
                self.opened.set_exception(ConnectionError(f"refused: {self.status_line}"))
                self.close_transport()
                return
            self._upgraded = True
            self.upgraded_at = time.time()
            self.opened.set_result(None)
        self._parse(time.time())

    def _parse(self, now: float) -> None:
        buffer = self._buffer
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            opcode = buffer[offset] & 0x0F
            length = buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            end = start + length
            if end > size:
                break
            payload = bytes(buffer[start:end])
            offset = end
            if opcode in (OP_TEXT, OP_BINARY):
                self.frames += 1
                self._on_frame(self, payload, now)
            elif opcode == OP_PING:
                self.send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.send(OP_CLOSE, payload[:2])
                self.close_transport()
                break
        if offset:
            del buffer[:offset]

    def send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(client_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode())

    def close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def close(self) -> None:
        """Send a normal close frame and drop the connection."""
        self.send(OP_CLOSE, struct.pack("!H", 1000))
        self.close_transport()


async def connect(
    host: str, port: int, path: str, on_frame: FrameCallback, *, timeout: float = 30.0
) -> RawWebSocket:
    """Open one socket and complete its handshake."""
    loop = asyncio.get_running_loop()
    socket = RawWebSocket(host, port, path, on_frame)
    await asyncio.wait_for(loop.create_connection(lambda: socket, host, port), timeout)
    await asyncio.wait_for(socket.opened, timeout)
    return socket


async def connect_many(
    count: int,
    host: str,
    port: int,
    path: str,
    on_frame: FrameCallback,
    *,
    in_flight: int = 200,
    timeout: float = 60.0,
) -> tuple[list[RawWebSocket], list[str]]:
    """Open ``count`` sockets, at most ``in_flight`` handshakes at a time; sockets and errors."""
    gate = asyncio.Semaphore(in_flight)
    sockets: list[RawWebSocket] = []
    errors: list[str] = []

    async def one() -> None:
        async with gate:
            try:
                sockets.append(await connect(host, port, path, on_frame, timeout=timeout))
            except (OSError, TimeoutError, ConnectionError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one() for _ in range(count)))
    return sockets, errors
