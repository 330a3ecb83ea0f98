"""The HTTP API under ``/api``: every call is authenticated and sees only its user's data."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.container import Container
from application.problems import Problem
from application.tokens import TokenClaims, TokenSigner
from domain.entities import Document
from domain.feed import PageKey, Scope, StatusFilter, WorkspaceDocumentsScope, WorkspacesScope
from domain.result import Err, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from entrypoints.server.errors import ApiError
from entrypoints.server.representation import document_json, workspace_json
from entrypoints.server.uploads import receive_upload

MAX_JSON_BODY_BYTES = 64 * 1024
# Ids are stored as 64-bit integers; a bigger one names nothing and must not reach the store.
MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
T = TypeVar("T")

Handler = Callable[[Request, TokenClaims], Awaitable[Response]]


class Api:
    """The route handlers, sharing the container, the token signer and the upload limit."""

    def __init__(self, container: Container, signer: TokenSigner, *, max_upload_bytes: int):
        self._container = container
        self._signer = signer
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
        verified = self._signer.verify(token.strip())
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
        workspaces = self._container.workspaces()
        created = await run_in_threadpool(
            lambda: workspaces.create(user_id=claims.user_id, name=name)
        )
        return JSONResponse(workspace_json(_value(created)), status_code=202)

    async def list_workspaces(self, request: Request, claims: TokenClaims) -> Response:
        return await self._page(request, WorkspacesScope(claims.user_id), "workspaces")

    async def get_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        workspaces = self._container.workspaces()
        found = await run_in_threadpool(
            lambda: workspaces.get(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(found)))

    async def retry_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        workspaces = self._container.workspaces()
        retried = await run_in_threadpool(
            lambda: workspaces.retry(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(retried)), status_code=202)

    async def upload_document(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        document = await receive_upload(
            request,
            self._container.documents(),
            user_id=claims.user_id,
            workspace_id=workspace_id,
            max_bytes=self._max_upload_bytes,
        )
        return JSONResponse(document_json(document), status_code=202)

    async def list_documents(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = _path_id(request, "workspace_id")
        workspaces = self._container.workspaces()
        found = await run_in_threadpool(
            lambda: workspaces.get(user_id=claims.user_id, workspace_id=workspace_id)
        )
        _value(found)
        scope = WorkspaceDocumentsScope(claims.user_id, workspace_id)
        return await self._page(request, scope, "documents")

    async def _page(self, request: Request, scope: Scope, name: str) -> Response:
        """One page of ``scope`` as ``{name: [...], "next": link or null}``."""
        query = ListQuery.parse(
            request.query_params,
            WorkspaceStatus if isinstance(scope, WorkspacesScope) else DocumentProcessingStatus,
        )
        feed = self._container.feed()
        page = await run_in_threadpool(
            lambda: feed.page(scope, limit=query.limit, after=query.after, status=query.status)
        )
        following = None
        if page.next_key is not None:
            parameters = {"limit": str(query.limit), "after": str(page.next_key.after_id)}
            if query.status is not None:
                parameters["status"] = query.status.value
            following = f"{request.url.path}?{urlencode(parameters)}"
        return JSONResponse(
            {
                name: [
                    document_json(e) if isinstance(e, Document) else workspace_json(e)
                    for e in page.entities
                ],
                "next": following,
            }
        )

    async def get_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = _path_id(request, "document_id")
        documents = self._container.documents()
        found = await run_in_threadpool(
            lambda: documents.get(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(found)))

    async def retry_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = _path_id(request, "document_id")
        documents = self._container.documents()
        retried = await run_in_threadpool(
            lambda: documents.retry(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(retried)), status_code=202)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The query of a list request: page size, keyset position and status filter."""

    limit: int
    after: PageKey | None
    status: StatusFilter

    @classmethod
    def parse(
        cls,
        params: Mapping[str, str],
        statuses: type[DocumentProcessingStatus] | type[WorkspaceStatus],
    ) -> ListQuery:
        """The query ``params`` ask for; a bad value is a 400 naming the parameter."""
        unknown = sorted(set(params) - {"limit", "after", "status"})
        if unknown:
            raise _bad_parameter(unknown[0][:40], "is not a parameter of this list")
        limit = DEFAULT_PAGE_SIZE
        if "limit" in params:
            raw = params["limit"]
            if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
                raise _bad_parameter("limit", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
            limit = int(raw)
        after = None
        if "after" in params:
            raw = params["after"]
            if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
                raise _bad_parameter("after", "must be the 'next' key of a previous page")
            after = PageKey(int(raw))
        status: StatusFilter = None
        if "status" in params:
            try:
                status = statuses(params["status"])
            except ValueError:
                allowed = ", ".join(s.value for s in statuses)
                raise _bad_parameter("status", f"must be one of: {allowed}") from None
        return cls(limit, after, status)


def _bad_parameter(name: str, problem: str) -> ApiError:
    return ApiError(400, f"query parameter '{name}' {problem}", parameter=name)


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
