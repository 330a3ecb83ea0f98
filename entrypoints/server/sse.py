"""``GET /events``: the same scoped, resumable status stream as ``/ws``, as Server-Sent Events.

For clients that cannot open a WebSocket. ``EventSource`` cannot set headers, so the token
comes as the ``token`` query parameter, like on ``/ws``; the scopes as repeated ``scope``
parameters. Every event that completes an answer or carries a live change has an ``id``: the
cursor after it. A reconnecting ``EventSource`` sends the last one back as ``Last-Event-ID``
and is answered with what changed since, exactly as a WebSocket client resuming.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.tokens import TokenVerifier
from domain.result import Err
from entrypoints.server.errors import error_response
from entrypoints.server.hub import Connection, SocketHub
from entrypoints.server.protocol import parse_cursor
from entrypoints.server.sockets import MAX_SOCKETS_PER_USER, subscription_from_query

KEEPALIVE_SECONDS = 15.0
# Frames waiting for the response body; past it the hub's own backlog holds them.
STREAM_BUFFER_FRAMES = 16


class EventStream:
    """A ``FrameSender`` that turns the hub's frames into SSE events with cursor ids."""

    def __init__(self, cursor: str | None) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(STREAM_BUFFER_FRAMES)
        self._cursor = None if cursor is None else parse_cursor(cursor)

    async def send_text(self, data: str) -> None:
        await self._queue.put(data)

    def event(self, frame: str) -> str:
        """``frame`` as one SSE event, with an ``id`` when it moves the cursor on."""
        parsed = json.loads(frame)
        cursor = parse_cursor(parsed["cursor"]) if isinstance(parsed.get("cursor"), str) else None
        moves = cursor is not None and (parsed.get("type") != "sync" or parsed.get("last"))
        if moves and cursor is not None:
            held = self._cursor
            if held is None or held.epoch != cursor.epoch or cursor.position > held.position:
                self._cursor = cursor
        lines = f"data: {frame}\n\n"
        if moves and self._cursor is not None:
            return f"id: {self._cursor.encode()}\n{lines}"
        return lines

    async def next_frame(self, timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


class StatusEvents:
    """Authenticates an event-stream request, registers it with the hub, and streams to it."""

    def __init__(
        self,
        hub: SocketHub,
        verifier: TokenVerifier,
        *,
        max_streams_per_user: int = MAX_SOCKETS_PER_USER,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._hub = hub
        self._verifier = verifier
        self._max_per_user = max_streams_per_user
        self._keepalive = keepalive_seconds

    async def handle(self, request: Request) -> Response:
        verified = self._verifier.verify(request.query_params.get("token", ""))
        if isinstance(verified, Err):
            return error_response(401, verified.error)
        claims = verified.value
        scopes = request.query_params.getlist("scope")
        if not scopes:
            return error_response(400, "name at least one 'scope'")
        subscription = subscription_from_query(
            request.query_params, scopes, request.headers.get("last-event-id")
        )
        if isinstance(subscription, Err):
            return error_response(400, subscription.error)
        if self._hub.connections_of(claims.user_id) >= self._max_per_user:
            limit = self._max_per_user
            message = f"too many open connections for this user (at most {limit})"
            return error_response(429, message)
        stream = EventStream(None if subscription.value is None else subscription.value.cursor)
        connection = self._hub.connect(stream, claims.user_id, subscription.value)
        return StreamingResponse(
            self._events(stream, connection, expires_at=claims.expires_at),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(
        self, stream: EventStream, connection: Connection, *, expires_at: int
    ) -> AsyncIterator[str]:
        try:
            # Tells EventSource how long to wait before it reconnects on its own.
            yield "retry: 2000\n\n"
            while not connection.finished and time.time() < expires_at:
                frame = await stream.next_frame(self._keepalive)
                yield ": keep-alive\n\n" if frame is None else stream.event(frame)
        finally:
            self._hub.disconnect(connection)
            await connection.stop()
