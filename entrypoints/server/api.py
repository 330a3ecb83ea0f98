"""The HTTP API under ``/api``: every call is authenticated and sees only its user's data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.documents import Documents
from application.problems import Problem
from application.tokens import TokenClaims, TokenVerifier
from application.workspaces import Workspaces
from domain.entities import Document
from domain.feed import PageKey, Scope, StatusFilter, WorkspaceDocumentsScope, WorkspacesScope
from domain.history import StatusHistoryEntry
from domain.ports import ChangeFeed
from domain.result import Err, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from entrypoints.server.errors import ApiError
from entrypoints.server.openapi import Operation, OperationRoute
from entrypoints.server.params import (
    BEARER_CHALLENGE,
    MAX_ID,
    bearer_token,
    json_object,
    path_id,
    text_field,
)
from entrypoints.server.representation import (
    document_json,
    history_entry_json,
    workspace_json,
)
from entrypoints.server.uploads import receive_upload

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
T = TypeVar("T")

Handler = Callable[[Request, TokenClaims], Awaitable[Response]]


class Api:
    """The route handlers, sharing the use cases, the token verifier and the upload limit."""

    def __init__(
        self,
        workspaces: Workspaces,
        documents: Documents,
        feed: ChangeFeed,
        verifier: TokenVerifier,
        *,
        max_upload_bytes: int,
    ):
        self._workspaces = workspaces
        self._documents = documents
        self._feed = feed
        self._verifier = verifier
        self._max_upload_bytes = max_upload_bytes

    def routes(self) -> list[OperationRoute]:
        def route(path: str, handler: Handler, method: str, operation: Operation) -> OperationRoute:
            return OperationRoute(
                path, self._authenticated(handler), method=method, operation=operation
            )

        workspace, document = "/api/workspaces/{workspace_id}", "/api/documents/{document_id}"
        return [
            route("/api/session", self.session, "GET", _op("whose token this is", "Session")),
            route(
                "/api/workspaces",
                self.create_workspace,
                "POST",
                _op(
                    "create a workspace; it is provisioned in the background",
                    "Workspace",
                    400,
                    413,
                    422,
                    503,
                    status=202,
                    body="NewWorkspace",
                ),
            ),
            route(
                "/api/workspaces", self.list_workspaces, "GET", _op("my workspaces", "Workspaces")
            ),
            route(workspace, self.get_workspace, "GET", _op("one workspace", "Workspace", 404)),
            route(
                f"{workspace}/retry",
                self.retry_workspace,
                "POST",
                _op("provision a failed workspace again", "Workspace", 404, 409, 503, status=202),
            ),
            route(
                f"{workspace}/cancel",
                self.cancel_workspace,
                "POST",
                _op("cancel a provisioning workspace: it ends in error", "Workspace", 404, 409),
            ),
            route(
                f"{workspace}/history",
                self.workspace_history,
                "GET",
                _op("every status change of one workspace, oldest first", "History", 400, 404),
            ),
            route(
                f"{workspace}/documents",
                self.upload_document,
                "POST",
                _op(
                    "upload a document into a ready workspace; it is processed in the background",
                    "Document",
                    400,
                    404,
                    409,
                    413,
                    415,
                    422,
                    503,
                    status=202,
                    body="Upload",
                    body_media_type="multipart/form-data",
                ),
            ),
            route(
                f"{workspace}/documents",
                self.list_documents,
                "GET",
                _op("the documents of one workspace", "Documents", 404),
            ),
            route(document, self.get_document, "GET", _op("one document", "Document", 404)),
            route(
                f"{document}/retry",
                self.retry_document,
                "POST",
                _op("process a failed document again", "Document", 404, 409, 503, status=202),
            ),
            route(
                f"{document}/cancel",
                self.cancel_document,
                "POST",
                _op(
                    "cancel a pending or processing document: it ends failed, its work stops",
                    "Document",
                    404,
                    409,
                ),
            ),
            route(
                f"{document}/history",
                self.document_history,
                "GET",
                _op("every status change of one document, oldest first", "History", 400, 404),
            ),
        ]

    def _authenticated(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, self.authenticate(request))

        return endpoint

    def authenticate(self, request: Request) -> TokenClaims:
        token = bearer_token(request.headers.get("authorization", ""))
        verified = self._verifier.verify(token)
        if isinstance(verified, Err):
            raise ApiError(401, verified.error, headers=BEARER_CHALLENGE)
        return verified.value

    async def session(self, request: Request, claims: TokenClaims) -> Response:
        return JSONResponse({"user_id": claims.user_id, "expires_at": claims.expires_at})

    async def create_workspace(self, request: Request, claims: TokenClaims) -> Response:
        name = text_field(await json_object(request), "name")
        workspaces = self._workspaces
        created = await run_in_threadpool(
            lambda: workspaces.create(user_id=claims.user_id, name=name)
        )
        return JSONResponse(workspace_json(_value(created)), status_code=202)

    async def list_workspaces(self, request: Request, claims: TokenClaims) -> Response:
        return await self._page(request, WorkspacesScope(claims.user_id), "workspaces")

    async def get_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        workspaces = self._workspaces
        found = await run_in_threadpool(
            lambda: workspaces.get(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(found)))

    async def retry_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        workspaces = self._workspaces
        retried = await run_in_threadpool(
            lambda: workspaces.retry(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(retried)), status_code=202)

    async def upload_document(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        document = await receive_upload(
            request,
            self._documents,
            user_id=claims.user_id,
            workspace_id=workspace_id,
            max_bytes=self._max_upload_bytes,
        )
        return JSONResponse(document_json(document), status_code=202)

    async def list_documents(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        workspaces = self._workspaces
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
        feed = self._feed
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
        document_id = path_id(request, "document_id")
        documents = self._documents
        found = await run_in_threadpool(
            lambda: documents.get(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(found)))

    async def retry_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = path_id(request, "document_id")
        documents = self._documents
        retried = await run_in_threadpool(
            lambda: documents.retry(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(retried)), status_code=202)

    async def cancel_document(self, request: Request, claims: TokenClaims) -> Response:
        document_id = path_id(request, "document_id")
        documents = self._documents
        cancelled = await run_in_threadpool(
            lambda: documents.cancel(user_id=claims.user_id, document_id=document_id)
        )
        return JSONResponse(document_json(_value(cancelled)))

    async def cancel_workspace(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        workspaces = self._workspaces
        cancelled = await run_in_threadpool(
            lambda: workspaces.cancel(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse(workspace_json(_value(cancelled)))

    async def document_history(self, request: Request, claims: TokenClaims) -> Response:
        document_id = path_id(request, "document_id")
        documents = self._documents
        return await _history_page(
            request,
            lambda limit, after: documents.history(
                user_id=claims.user_id, document_id=document_id, limit=limit, after=after
            ),
        )

    async def workspace_history(self, request: Request, claims: TokenClaims) -> Response:
        workspace_id = path_id(request, "workspace_id")
        workspaces = self._workspaces
        return await _history_page(
            request,
            lambda limit, after: workspaces.history(
                user_id=claims.user_id, workspace_id=workspace_id, limit=limit, after=after
            ),
        )


HistoryRead = Callable[[int, int | None], Result[Sequence[StatusHistoryEntry], Problem]]


async def _history_page(request: Request, read: HistoryRead) -> Response:
    """``{"history": [...], "next": link or null}``: one page of what ``read`` finds."""
    query = ListQuery.parse(request.query_params, None)
    after = None if query.after is None else query.after.after_id
    # One entry past the page tells whether another follows.
    entries = _value(await run_in_threadpool(lambda: read(query.limit + 1, after)))
    page = entries[: query.limit]
    following = None
    if len(entries) > query.limit:
        parameters = {"limit": str(query.limit), "after": str(page[-1].position)}
        following = f"{request.url.path}?{urlencode(parameters)}"
    return JSONResponse({"history": [history_entry_json(e) for e in page], "next": following})


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
        statuses: type[DocumentProcessingStatus] | type[WorkspaceStatus] | None,
    ) -> ListQuery:
        """The query ``params`` ask for; a bad value is a 400 naming the parameter.

        With ``statuses`` ``None`` the list has no status filter.
        """
        known = {"limit", "after"} | ({"status"} if statuses is not None else set())
        unknown = sorted(set(params) - known)
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
        if "status" in params and statuses is not None:
            try:
                status = statuses(params["status"])
            except ValueError:
                allowed = ", ".join(s.value for s in statuses)
                raise _bad_parameter("status", f"must be one of: {allowed}") from None
        return cls(limit, after, status)


def _bad_parameter(name: str, problem: str) -> ApiError:
    return ApiError(400, f"query parameter '{name}' {problem}", field=name)


def _value(result: Result[T, Problem]) -> T:
    if isinstance(result, Err):
        raise ApiError.of(result.error)
    return result.value


def _op(
    summary: str,
    schema: str,
    *errors: int,
    status: int = 200,
    body: str | None = None,
    body_media_type: str = "application/json",
) -> Operation:
    """An authenticated operation answering ``schema``, or one of ``errors``."""
    return Operation(
        summary=summary,
        schema=schema,
        errors=errors,
        status=status,
        body=body,
        body_media_type=body_media_type,
        authenticated=True,
    )
