"""The HTTP API under ``/api``: every call is authenticated and sees only its user's data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.documents import Documents
from application.problems import Problem
from application.tokens import TokenClaims, TokenVerifier
from application.workspaces import Workspaces
from domain.result import Err, Result
from entrypoints.server.errors import ApiError
from entrypoints.server.openapi import Operation, OperationRoute
from entrypoints.server.params import (
    BEARER_CHALLENGE,
    bearer_token,
    json_object,
    path_id,
    text_field,
)
from entrypoints.server.representation import document_json, workspace_json
from entrypoints.server.uploads import receive_upload

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
        workspaces = self._workspaces
        found = await run_in_threadpool(lambda: workspaces.list(user_id=claims.user_id))
        return JSONResponse({"workspaces": [workspace_json(w) for w in found]})

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
        documents = self._documents
        found = await run_in_threadpool(
            lambda: documents.list(user_id=claims.user_id, workspace_id=workspace_id)
        )
        return JSONResponse({"documents": [document_json(d) for d in _value(found)]})

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
