"""The operator's console over HTTP, under ``/api/admin``, and its live figures on the
operator socket ``/admin/ws``: only operator tokens get in.

Every route authenticates first (401 without a valid token) and then refuses every token
without the operator role with 403, before anything is read or changed; the socket refuses
alike, before its handshake completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from application.operations import OperatorConsole
from application.tokens import TokenClaims, TokenVerifier
from domain.events import utc_now
from domain.problems import Problem
from domain.result import Err, Result
from entrypoints.operations_json import (
    action_json,
    figures_json,
    letter_json,
    stage_json,
    stuck_json,
    worker_json,
)
from entrypoints.server.errors import ApiError
from entrypoints.server.openapi import Operation, OperationRoute
from entrypoints.server.params import json_object, text_field
from entrypoints.server.sockets import (
    CLOSE_POLICY_VIOLATION,
    close_socket,
    origin_allowed,
    refuse_socket,
)

log = logging.getLogger(__name__)

Authenticate = Callable[[Request], TokenClaims]
AdminHandler = Callable[[Request, str], Awaitable[Response]]


class SettleOne(Protocol):
    def __call__(self, queue: str, letter_id: str, *, actor: str) -> Result[bool, Problem]: ...


STUCK_WINDOW_SECONDS = 10.0
T = TypeVar("T")

OPERATOR_SOCKET_PATH = "/admin/ws"
OPERATOR_FIGURES = "operator_figures"
# How often the figures are read while an operator watches; the queue ages move every second.
FIGURES_INTERVAL_SECONDS = 2.0
NOT_AN_OPERATOR = "this needs a token with the operator role"


def actor_of(claims: TokenClaims) -> str:
    """Who an operator action is recorded as, for a token."""
    return f"user {claims.user_id}"


class AdminApi:
    """The admin routes, sharing the console and the API's authentication."""

    def __init__(self, console: OperatorConsole, authenticate: Authenticate) -> None:
        self._console = console
        self._authenticate = authenticate

    def routes(self) -> list[OperationRoute]:
        def route(
            path: str, handler: AdminHandler, method: str, operation: Operation
        ) -> OperationRoute:
            return OperationRoute(
                path, self._operator_only(handler), method=method, operation=operation
            )

        letters = "/api/admin/dead-letters"
        return [
            route(
                letters,
                self.dead_letters,
                "GET",
                _op("dead letters of every queue", "DeadLetterQueues"),
            ),
            route(
                f"{letters}/requeue",
                self.requeue,
                "POST",
                _op("deliver one dead letter afresh", "Settled", 404, 422, body="LetterRef"),
            ),
            route(
                f"{letters}/requeue-all",
                self.requeue_all,
                "POST",
                _op(
                    "deliver every dead letter of a queue afresh",
                    "Settled",
                    404,
                    422,
                    body="QueueRef",
                ),
            ),
            route(
                f"{letters}/discard",
                self.discard,
                "POST",
                _op("remove one dead letter for good", "Settled", 404, 422, body="LetterRef"),
            ),
            route("/api/admin/workers", self.workers, "GET", _op("live workers", "Workers")),
            route(
                "/api/admin/stuck",
                self.stuck,
                "GET",
                _op("work without a live lease, and the sweeper's recoveries", "Stuck"),
            ),
            route(
                "/api/admin/stages",
                self.stages,
                "GET",
                _op("per stage: workers, throughput, failures and dead letters", "Stages"),
            ),
            route(
                "/api/admin/queues",
                self.queues,
                "GET",
                _op(
                    "per stage: queue depth, age of the oldest waiting request, dead letters, "
                    "throughput and failure rate (what the operator socket pushes)",
                    "StageFigures",
                ),
            ),
            route(
                "/api/admin/actions",
                self.actions,
                "GET",
                _op("the latest operator actions", "OperatorActions"),
            ),
        ]

    def _operator_only(self, handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            claims = self._authenticate(request)
            if not claims.is_operator:
                raise ApiError(403, NOT_AN_OPERATOR)
            return await handler(request, actor_of(claims))

        return endpoint

    async def dead_letters(self, request: Request, actor: str) -> Response:
        console = self._console
        found = _value(await run_in_threadpool(console.dead_letters))
        return JSONResponse(
            {"queues": {name: [letter_json(x) for x in letters] for name, letters in found.items()}}
        )

    async def requeue(self, request: Request, actor: str) -> Response:
        return await self._settle_one(request, actor, self._console.requeue)

    async def requeue_all(self, request: Request, actor: str) -> Response:
        queue = text_field(await json_object(request), "queue")
        console = self._console
        sent = _value(await run_in_threadpool(lambda: console.requeue_all(queue, actor=actor)))
        return JSONResponse({"queue": queue, "count": sent})

    async def discard(self, request: Request, actor: str) -> Response:
        return await self._settle_one(request, actor, self._console.discard)

    async def _settle_one(self, request: Request, actor: str, settle: SettleOne) -> Response:
        body = await json_object(request)
        queue, letter_id = text_field(body, "queue"), text_field(body, "letter_id")
        _value(await run_in_threadpool(lambda: settle(queue, letter_id, actor=actor)))
        return JSONResponse({"queue": queue, "count": 1})

    async def workers(self, request: Request, actor: str) -> Response:
        live = await run_in_threadpool(self._console.workers)
        return JSONResponse({"workers": [worker_json(w) for w in live]})

    async def stuck(self, request: Request, actor: str) -> Response:
        console = self._console
        report = await run_in_threadpool(
            lambda: console.stuck(expiring_within=STUCK_WINDOW_SECONDS)
        )
        return JSONResponse(stuck_json(report))

    async def stages(self, request: Request, actor: str) -> Response:
        console = self._console

        def read() -> dict[str, Any]:
            letters = _value(console.dead_letters())
            return {
                "stages": [stage_json(r) for r in console.stage_rates()],
                "dead_letters": {name: len(found) for name, found in letters.items()},
            }

        return JSONResponse(await run_in_threadpool(read))

    async def queues(self, request: Request, actor: str) -> Response:
        figures = await run_in_threadpool(self._console.figures)
        return JSONResponse({"stages": [figures_json(f) for f in figures]})

    async def actions(self, request: Request, actor: str) -> Response:
        recent = await run_in_threadpool(self._console.actions)
        return JSONResponse({"actions": [action_json(a) for a in recent]})


def _value(result: Result[T, Problem]) -> T:
    if isinstance(result, Err):
        raise ApiError.of(result.error)
    return result.value


def _op(summary: str, schema: str, *errors: int, body: str | None = None) -> Operation:
    return Operation(
        summary=summary, schema=schema, errors=(403, *errors), body=body, authenticated=True
    )


def figures_frame(figures: Sequence[dict[str, Any]]) -> str:
    """The ``operator_figures`` frame of the operator socket."""
    frame = {"type": OPERATOR_FIGURES, "at": utc_now().isoformat(), "stages": list(figures)}
    return json.dumps(frame, separators=(",", ":"))


class ConsoleFigures:
    """The console's live figures, read every ``interval`` while some operator watches.

    One reader task serves every operator socket of this instance: it exists only while at
    least one is open. Each socket is sent the latest figures whenever they changed; one that
    reads slowly skips to the newest rather than queueing old ones, so it holds no backlog.
    """

    def __init__(
        self,
        read: Callable[[], list[dict[str, Any]]],
        *,
        interval: float = FIGURES_INTERVAL_SECONDS,
    ) -> None:
        self._read = read
        self._interval = interval
        self._figures: list[dict[str, Any]] | None = None
        self._frame = ""
        self._version = 0
        self._changed: asyncio.Event | None = None
        self._watchers = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return self._watchers

    async def frames(self) -> AsyncGenerator[str, None]:
        """The current figures as soon as they are read, then each change of them."""
        self._watchers += 1
        seen = 0
        if self._reader is None:
            # Figures kept from an earlier watch are stale: wait for a fresh reading.
            self._figures = None
            seen = self._version
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())
        try:
            while True:
                while self._version == seen:
                    await self._event().wait()
                seen = self._version
                yield self._frame
        finally:
            self._watchers -= 1
            if self._watchers == 0 and self._reader is not None:
                self._reader.cancel()
                self._reader = None

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def _read_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                figures = await run_in_threadpool(self._read)
            except Exception:  # the next reading may succeed; the sockets stay open
                log.warning("could not read the console's figures", exc_info=True)
            else:
                if figures != self._figures:
                    self._figures = figures
                    self._frame = figures_frame(figures)
                    self._version += 1
                    changed, self._changed = self._event(), asyncio.Event()
                    changed.set()
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))


class OperatorSocket:
    """``/admin/ws``: pushes ``operator_figures`` frames to operators, and only to them.

    Refused before the handshake like ``/ws``: 401 for a missing or invalid token, 403 for a
    token without the operator role (or a foreign origin); closed with 1008 when the token
    expires. Frames from the client are read and ignored.
    """

    def __init__(
        self,
        figures: ConsoleFigures,
        verifier: TokenVerifier,
        *,
        allowed_origins: Sequence[str],
    ) -> None:
        self._figures = figures
        self._verifier = verifier
        self._allowed_origins = tuple(allowed_origins)

    async def handle(self, websocket: WebSocket) -> None:
        if not origin_allowed(websocket, self._allowed_origins):
            await refuse_socket(websocket, 403, "origin not allowed")
            return
        verified = self._verifier.verify(websocket.query_params.get("token", ""))
        if isinstance(verified, Err):
            await refuse_socket(websocket, 401, verified.error)
            return
        if not verified.value.is_operator:
            await refuse_socket(websocket, 403, NOT_AN_OPERATOR)
            return
        await websocket.accept()
        expires_in = max(0.0, verified.value.expires_at - time.time())
        # One task group: whichever ends first (the client leaving, a failed send) ends the
        # other, and the server's own cancellation reaches both.
        with anyio.move_on_after(expires_in) as expiry:
            async with anyio.create_task_group() as group:

                async def send() -> None:
                    try:
                        await self._send(websocket)
                    except Exception as exc:  # a broken socket ends this socket only
                        log.warning("operator socket send failed: %s", exc)
                    group.cancel_scope.cancel()

                async def drain() -> None:
                    await _drain(websocket)
                    group.cancel_scope.cancel()

                group.start_soon(send)
                group.start_soon(drain)
        if expiry.cancelled_caught:
            await close_socket(websocket, CLOSE_POLICY_VIOLATION, "token expired")

    async def _send(self, websocket: WebSocket) -> None:
        # Closed at once when the task is cancelled, so that the watcher count drops with it.
        async with contextlib.aclosing(self._figures.frames()) as frames:
            async for frame in frames:
                await websocket.send_text(frame)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    with contextlib.suppress(Exception):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
