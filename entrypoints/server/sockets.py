"""``GET /ws``: the authenticated WebSocket that pushes a user's status changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

from starlette.datastructures import Headers, QueryParams
from starlette.websockets import WebSocket, WebSocketState

from application.limits import TokenBucket
from application.tokens import TokenVerifier
from domain.result import Err, Ok, Result
from entrypoints.server.errors import error_response
from entrypoints.server.hub import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_SLOW_CLIENT,
    Connection,
    SocketHub,
)
from entrypoints.server.protocol import (
    CLOSE_BAD_FRAME,
    MAX_CURSOR_CHARS,
    Resync,
    Subscribe,
    Unknown,
    decode_client_frame,
    parse_scopes,
)

log = logging.getLogger(__name__)

MAX_INCOMING_FRAME_BYTES = 4096
CLOSE_POLICY_VIOLATION = 1008
MAX_SOCKETS_PER_USER = 100
CLOSE_UNSUPPORTED_DATA = CLOSE_BAD_FRAME
MAX_FRAMES_PER_SECOND = 50
CLOSE_TOO_BIG = 1009
CLOSE_TIMEOUT_SECONDS = 2.0


def subscription_from_query(
    query: Mapping[str, str], scopes: Sequence[str], last_event_id: str | None = None
) -> Result[Subscribe | None, str]:
    """The subscription a URL asks for: repeated ``scope`` and one ``cursor``, or none at all.

    ``last_event_id`` (an SSE client's resume point) wins over the ``cursor`` parameter.
    """
    cursor = last_event_id or query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        return Err(f"'cursor' may be at most {MAX_CURSOR_CHARS} characters")
    if not scopes:
        return Ok(None) if cursor is None else Err("'cursor' needs at least one 'scope'")
    names = parse_scopes(scopes)
    if isinstance(names, Err):
        return names
    return Ok(Subscribe(names.value, cursor))


def origin_allowed(websocket: WebSocket, allowed_origins: Sequence[str]) -> bool:
    """No ``Origin`` (not a browser), the server's own origin, or one on the allow-list."""
    # Read from the scope: the socket's cached ``headers`` would live as long as it does.
    headers = Headers(scope=websocket.scope)
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in {allowed.lower() for allowed in allowed_origins}:
        return True
    host = headers.get("host", "").strip().lower()
    http_scheme = "https" if websocket.scope.get("scheme") == "wss" else "http"
    return bool(host) and origin == f"{http_scheme}://{host}"


class StatusSocket:
    """Authenticates a socket, registers it with the hub, and serves it until it ends."""

    def __init__(
        self,
        hub: SocketHub,
        verifier: TokenVerifier,
        *,
        allowed_origins: Sequence[str],
        max_incoming_frame_bytes: int = MAX_INCOMING_FRAME_BYTES,
        max_sockets_per_user: int = MAX_SOCKETS_PER_USER,
        max_frames_per_second: int = MAX_FRAMES_PER_SECOND,
    ) -> None:
        self._max_frames_per_second = max_frames_per_second
        self._hub = hub
        self._verifier = verifier
        self._allowed_origins = tuple(allowed_origins)
        self._max_frame = max_incoming_frame_bytes
        self._max_per_user = max_sockets_per_user

    async def handle(self, websocket: WebSocket) -> None:
        admitted = await self._admit(websocket)
        if admitted is None:
            return
        user_id, expires_at, subscription = admitted
        await websocket.accept()
        connection = self._hub.connect(websocket, user_id, subscription)
        try:
            await self._serve(websocket, connection, expires_at=expires_at)
        finally:
            self._hub.disconnect(connection)

    async def _admit(self, websocket: WebSocket) -> tuple[int, int, Subscribe | None] | None:
        """The socket's user, token expiry and subscription, or ``None`` once refused.

        Read from the scope, not through the socket's cached ``query_params``: the token's
        claims and the parsed query are garbage once this returns, instead of living as long
        as the socket does.
        """
        scope = websocket.scope
        if not origin_allowed(websocket, self._allowed_origins):
            await _refuse(websocket, 403, "origin not allowed")
            return None
        query = QueryParams(scope.get("query_string", b""))
        verified = self._verifier.verify(query.get("token", ""))
        if isinstance(verified, Err):
            await _refuse(websocket, 401, verified.error)
            return None
        claims = verified.value
        subscription = subscription_from_query(query, query.getlist("scope"))
        if isinstance(subscription, Err):
            await _refuse(websocket, 400, subscription.error)
            return None
        if self._hub.connections_of(claims.user_id) >= self._max_per_user:
            # One user's flood must not exhaust the server for everyone else.
            await _refuse(
                websocket,
                429,
                f"too many open connections for this user (at most {self._max_per_user})",
            )
            return None
        return claims.user_id, claims.expires_at, subscription.value

    async def _serve(
        self, websocket: WebSocket, connection: Connection, *, expires_at: int
    ) -> None:
        # One task per socket, this one: it reads the client's frames until the socket ends,
        # and the hub wakes it from its read when the socket must end for another reason.
        # Sending needs a task only while the socket is behind (the hub's), and the token's
        # expiry is a timer, not a sleeping task.
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(
            loop.time() + max(0.0, expires_at - time.time()),
            connection.close,
            CLOSE_POLICY_VIOLATION,
            "token expired",
        )
        handler = asyncio.current_task()
        try:
            if handler is not None:
                connection.interrupt_on_end(handler)
            if not connection.finished:
                await self._read(websocket, connection)
        except asyncio.CancelledError:
            # Woken by the hub: go on to close. Cancelled by anyone else (the server shutting
            # down): stop here.
            if handler is None or not connection.finished or handler.uncancel() > 0:
                raise
        finally:
            expiry.cancel()
            await connection.stop()
        if connection.failure is not None and websocket.client_state is WebSocketState.CONNECTED:
            log.warning("socket send failed: %s", connection.failure)
            connection.close(CLOSE_INTERNAL_ERROR, "server error; reconnect")
        if connection.close_code == CLOSE_SLOW_CLIENT:
            self._hub.metrics.slow_sockets_closed += 1
            log.warning("closing a socket that fell behind its send queue")
        if connection.close_code is not None:
            await _close(websocket, connection.close_code, connection.close_reason)

    async def _read(self, websocket: WebSocket, connection: Connection) -> None:
        """Read the client's frames: ``subscribe`` and ``resync`` are honoured, anything else
        ends the socket with ``CLOSE_BAD_FRAME`` and a reason naming what was wrong, and a
        client sending faster than its frame rate is closed with ``CLOSE_POLICY_VIOLATION``."""
        rate = self._max_frames_per_second
        frames: TokenBucket | None = None  # made at the first frame: most sockets send none
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if frames is None:
                frames = TokenBucket(rate=rate, capacity=rate)
            if frames.take() > 0:
                connection.close(CLOSE_POLICY_VIOLATION, f"more than {rate} frames a second")
                return
            text: str | None = message.get("text")
            data: bytes | None = message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > self._max_frame:
                connection.close(CLOSE_TOO_BIG, f"frames may be at most {self._max_frame} bytes")
                return
            if text is None:
                connection.close(CLOSE_UNSUPPORTED_DATA, "only JSON text frames are accepted")
                return
            decoded = decode_client_frame(text)
            if isinstance(decoded, Err):
                connection.close(CLOSE_BAD_FRAME, decoded.error[:120])
                return
            frame = decoded.value
            if isinstance(frame, Resync):
                connection.request_resync()
            elif isinstance(frame, Unknown):
                continue  # a newer client's frame: ignored, as protocol 1 always did
            elif not connection.subscribe(frame):
                self._hub.disconnect(connection)


async def _refuse(websocket: WebSocket, status: int, message: str) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(status, message))
    else:
        await websocket.close(CLOSE_POLICY_VIOLATION, message)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    # A client that stopped reading may never take the close frame: do not wait for it.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), timeout=CLOSE_TIMEOUT_SECONDS)


# For the other sockets of this server (the operator's), which refuse and close alike.
refuse_socket = _refuse
close_socket = _close
