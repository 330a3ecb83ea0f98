"""The HTTP API under ``/api``: every call is authenticated and sees only its user's data."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.documents import Documents
from application.problems import Problem
from application.tokens import TokenClaims, TokenVerifier
from application.workspaces import Workspaces
from domain.result import Err, Result
from entrypoints.server.errors import ApiError
from entrypoints.server.representation import document_json, workspace_json
from entrypoints.server.uploads import receive_upload

MAX_JSON_BODY_BYTES = 64 * 1024
# Ids are stored as 64-bit integers; a bigger one names nothing and must not reach the store.
MAX_ID = 2**63 - 1
T = TypeVar("T")

Handler = Callable[[Request, TokenClaims], Awaitable[Response]]


class Api:
    """The route handlers, sharing the use cases, the token verifier and the upload limit."""

    def __init__(
        self,
        workspaces: Workspaces,
        documents: Documents,
        verifier: TokenVerifier,
        *,
        max_upload_bytes: int,
    ):
        self._workspaces = workspaces
        self._documents = documents
        self._verifier = verifier
        self._max_upload_bytes = max_upload_bytes

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str) -> Route:
            return Route(path, self._authenticated(handler), methods=[method])

        return [
            route("/api/session", self.session, "GET"),
            route("/api/workspaces", self.create_workspace, "POST"),
            route("/api/workspaces", self.list_workspaces, "GET"),
            route("/api/workspaces/{workspace_id:int}", self.get_workspace, "GET"),
            route("/api/workspaces/{workspace_id:int}/retry", self.retry_workspace, "POST"),
            route("/api/workspaces/{workspace_id:int}/documents", self.upload_document, "POST"),
            route("/api/workspaces/{workspace_id:int}/documents", self.list_documents, "GET"),
            route("/api/documents/{document_id:int}", self.get_document, "GET"),
            route("/api/documents/{document_id:int}/retry", self.retry_document, "POST"),
        ]

    def _authenticated(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, self.authenticate(request))

        return endpoint

    def authenticate(self, request: Request) -> TokenClaims:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing bearer token", headers=challenge)
        verified = self._verifier.verify(token.strip())
        if isinstance(verified, Err):
            raise ApiError(401, verified.error, headers=challenge)
        return verified.value

    async def session(self, request: Request, claims: TokenClaims) -> Response:
        return JSONResponse({"user_id": claims.user_id, "expires_at": claims.expires_at})

    async def create_workspace(self, request: Request, claims: TokenClaims) -> Response:
        body = await _json_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise ApiError(422, "'name' must be a string")
        workspaces = self._workspaces
        created = await run_in_threadpool(
            lambda: workspaces.create(user_id=claims.user_id, name=name)
        )
        return JSONResponse(workspace_json(_value(created)), status_code=202)

    async def list_workspaces(self, request: Request, claims: TokenClaims) -> Response:
        workspaces = self._workspaces
        found = await run_in_threadpool(lambda: workspaces.list(user_id=claims.user_id))
        return JSONResponse({"workspaces": [workspace_json(w) for w in found]})

    async def get_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        workspaces = self._workspaces
        found = await run_in_threadpool(
            lambda: workspaces.get(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(found)))

    async def retry_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        workspaces = self._workspaces
        retried = await run_in_threadpool(
            lambda: workspaces.retry(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(retried)), status_code=202)

    async def upload_document(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        document = await receive_upload(
            request,
            self._documents,
            user_id=claims.user_id,
            workspace_id=workspace_id,
            max_bytes=self._max_upload_bytes,
        )
        return JSONResponse(document_json(document), status_code=202)

    async def list_documents(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        documents = self._documents
        found = await run_in_threadpool(
            lambda: documents.list(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse({"documents": [document_json(d) for d in _value(found)]})

    async def get_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = _path_id(request, "document_id")
        documents = self._documents
        found = await run_in_threadpool(
            lambda: documents.get(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(found)))

    async def retry_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = _path_id(request, "document_id")
        documents = self._documents
        retried = await run_in_threadpool(
            lambda: documents.retry(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(retried)), status_code=202)


def _value(result: Result[T, Problem]) -> T:
    if isinstance(result, Err):
        raise ApiError.of(result.error)
    return result.value


def _path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    if value > MAX_ID:
        raise ApiError(404, f"{name.removesuffix('_id')} {value} not found")
    return value


async def _json_object(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY_BYTES:
            raise ApiError(413, f"a JSON body may be at most {MAX_JSON_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ApiError(422, "the body must be a JSON object")
    return parsed
