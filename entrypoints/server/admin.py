"""The operator's console over HTTP, under ``/api/admin``: only operator tokens get in.

Every route authenticates first (401 without a valid token) and then refuses every token
without the operator role with 403, before anything is read or changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.operations import OperatorConsole
from application.tokens import TokenClaims
from domain.problems import Problem
from domain.result import Err, Result
from entrypoints.operations_json import (
    action_json,
    letter_json,
    stage_json,
    stuck_json,
    worker_json,
)
from entrypoints.server.errors import ApiError
from entrypoints.server.openapi import Operation, OperationRoute
from entrypoints.server.params import json_object, text_field

Authenticate = Callable[[Request], TokenClaims]
AdminHandler = Callable[[Request, str], Awaitable[Response]]


class SettleOne(Protocol):
    def __call__(self, queue: str, letter_id: str, *, actor: str) -> Result[bool, Problem]: ...


STUCK_WINDOW_SECONDS = 10.0
T = TypeVar("T")


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
                raise ApiError(403, "this needs a token with the operator role")
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
