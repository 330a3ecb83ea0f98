"""Every error the server answers is JSON ``{"error": …, "code": …}`` with a fitting status.

``error`` is text for people; ``code`` is stable, one per status, for programs; ``field``,
when present, names the request value that was refused.
"""

from __future__ import annotations

import errno
import logging

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.problems import Problem, ProblemKind

log = logging.getLogger(__name__)

# Failures to reach the database: the request may succeed later, so the answer is 503.
UNAVAILABLE_DEPENDENCY = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

NO_SPACE = "the server has no room to store this; try again later"

PROBLEM_STATUS: dict[ProblemKind, int] = {
    ProblemKind.NOT_FOUND: 404,
    ProblemKind.CONFLICT: 409,
    ProblemKind.TOO_LARGE: 413,
    ProblemKind.UNSUPPORTED: 415,
    ProblemKind.INVALID: 422,
    ProblemKind.UNAVAILABLE: 503,
    ProblemKind.LIMITED: 429,
}


ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
    507: "insufficient_storage",
}


class ApiError(Exception):
    """A refusal to answer with ``status`` and a message meant for the client."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        field: str | None = None,
        limit: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.field = field
        self.limit = limit

    @classmethod
    def of(cls, problem: Problem) -> ApiError:
        headers = None if problem.retry_after is None else {"Retry-After": str(problem.retry_after)}
        return cls(
            PROBLEM_STATUS[problem.kind], problem.message, headers=headers, limit=problem.limit
        )


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    field: str | None = None,
    limit: str | None = None,
) -> Response:
    """``{"error", "code"}``, plus ``field`` naming a refused value, ``limit`` a 429's limit."""
    body = {"error": message, "code": ERROR_CODES.get(status, f"http_{status}")}
    if field is not None:
        body["field"] = field
    if limit is not None:
        body["limit"] = limit
    return JSONResponse(body, status_code=status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers, field=exc.field, limit=exc.limit)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, str(exc.detail), headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UNAVAILABLE_DEPENDENCY):
        log.warning(
            "database unavailable answering %s %s: %s",
            request.method,
            request.url.path,
            str(exc).splitlines()[0] if str(exc) else exc,
        )
        return error_response(
            503, "the database is unavailable; try again shortly", {"Retry-After": "5"}
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        log.error("storage full answering %s %s: %s", request.method, request.url.path, exc)
        return error_response(507, NO_SPACE)
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")
