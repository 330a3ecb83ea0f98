"""The app factory: the Starlette application, built from started ``Services``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles

from adapters.bootstrap import Services
from domain.result import Err
from entrypoints.asyncapi import asyncapi_document
from entrypoints.operations_json import figures_json
from entrypoints.server.admin import OPERATOR_SOCKET_PATH, AdminApi, ConsoleFigures, OperatorSocket
from entrypoints.server.api import Api
from entrypoints.server.bridge import StatusBridge
from entrypoints.server.errors import ApiError, on_api_error, on_http_exception, on_unexpected
from entrypoints.server.hub import SocketHub
from entrypoints.server.metrics import PushPathCollector, ServerMetrics
from entrypoints.server.openapi import (
    ADMIN_PAGE_OPERATION,
    ASYNCAPI_OPERATION,
    EVENTS_OPERATION,
    HEALTH_OPERATION,
    METRICS_OPERATION,
    OPENAPI_ROUTE,
    PAGE_OPERATION,
    READINESS_OPERATION,
    OperationRoute,
)
from entrypoints.server.protocol import FIRST_PAGE_SIZE, MAX_FRAME_BYTES, RESUME_LIMIT
from entrypoints.server.snapshots import ScopeReader, SharedSnapshotReads, Snapshot
from entrypoints.server.sockets import MAX_INCOMING_FRAME_BYTES, MAX_SOCKETS_PER_USER, StatusSocket
from entrypoints.server.sse import StatusEvents
from entrypoints.server.tracing import CarriedTraceContext

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
READINESS_TIMEOUT_SECONDS = 3.0
PAGE_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Tunables of one server instance."""

    socket_queue_size: int = 256
    max_incoming_frame_bytes: int = MAX_INCOMING_FRAME_BYTES
    max_sockets_per_user: int = MAX_SOCKETS_PER_USER
    max_frame_bytes: int = MAX_FRAME_BYTES
    first_page_size: int = FIRST_PAGE_SIZE
    resume_limit: int = RESUME_LIMIT


class _Runtime:
    """What exists only while the app runs: the status bridge."""

    bridge: StatusBridge | None = None


def create_app(services: Services, options: ServerOptions | None = None) -> Starlette:
    """The server for ``services``, which ``Services.start`` has built and connected."""
    options = options or ServerOptions()
    settings = services.settings
    verifier = services.token_verifier
    metrics = ServerMetrics()
    runtime = _Runtime()
    workspaces = services.workspaces
    documents = services.documents
    repository = services.repository
    exposed = services.expose_queue_backlogs()
    exposed.register(
        PushPathCollector(
            metrics, subscription_up=lambda: runtime.bridge is not None and runtime.bridge.alive
        )
    )

    def read_snapshot(user_id: int) -> Snapshot:
        listed_workspaces = workspaces.list(user_id=user_id)
        listed_documents = documents.list(user_id=user_id)
        if isinstance(listed_documents, Err):
            raise RuntimeError(listed_documents.error.message)
        return Snapshot(documents=listed_documents.value, workspaces=listed_workspaces)

    reader = ScopeReader(
        lambda: services.feed, first_page=options.first_page_size, resume_limit=options.resume_limit
    )
    exposed.read_counter(
        "status_feed_reads_total",
        "Reads of the change feed answering subscriptions (shared reads count once).",
        lambda: reader.reads,
    )
    hub = SocketHub(
        metrics,
        SharedSnapshotReads(read_snapshot),
        queue_size=options.socket_queue_size,
        reader=reader,
        max_frame_bytes=options.max_frame_bytes,
        tracer=services.tracer,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.epoch = await reader.epoch()
        runtime.bridge = StatusBridge(services.broker, hub)
        await runtime.bridge.start()
        try:
            yield
        finally:
            hub.close_all()
            await runtime.bridge.stop()
            runtime.bridge = None

    async def index(request: Request) -> Response:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
        )

    async def admin_page(request: Request) -> Response:
        return FileResponse(
            STATIC_DIR / "admin.html",
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        try:
            await asyncio.wait_for(
                run_in_threadpool(lambda: repository.list_workspaces(user_id=0)),
                READINESS_TIMEOUT_SECONDS,
            )
            database = "ok"
        except Exception as exc:  # whatever the store raises, the answer is "not ready"
            database = f"unreachable: {type(exc).__name__}"
        subscription = "alive" if runtime.bridge is not None and runtime.bridge.alive else "down"
        ready = database == "ok" and subscription == "alive"
        return JSONResponse(
            {
                "status": "ready" if ready else "unready",
                "database": database,
                "subscription": subscription,
            },
            status_code=200 if ready else 503,
        )

    events_document = asyncapi_document()

    async def asyncapi_page(request: Request) -> Response:
        return JSONResponse(events_document)

    async def metrics_page(request: Request) -> Response:
        # Off the event loop: the queue gauges ask the broker at every scrape.
        body = await run_in_threadpool(exposed.exposition)
        return Response(body, media_type=exposed.content_type)

    api = Api(
        workspaces, documents, services.feed, verifier, max_upload_bytes=settings.max_upload_bytes
    )
    socket = StatusSocket(
        hub,
        verifier,
        allowed_origins=settings.allowed_origins,
        max_incoming_frame_bytes=options.max_incoming_frame_bytes,
        max_sockets_per_user=options.max_sockets_per_user,
        max_frames_per_second=settings.client_frames_per_second,
    )
    console = services.operator_console
    operator_socket = OperatorSocket(
        ConsoleFigures(lambda: [figures_json(f) for f in console.figures()]),
        verifier,
        allowed_origins=settings.allowed_origins,
    )
    events = StatusEvents(hub, verifier, max_streams_per_user=options.max_sockets_per_user)
    routes: list[BaseRoute] = [
        OperationRoute("/", index, method="GET", operation=PAGE_OPERATION),
        OperationRoute("/healthz", healthz, method="GET", operation=HEALTH_OPERATION),
        OperationRoute("/readyz", readyz, method="GET", operation=READINESS_OPERATION),
        OperationRoute("/metrics", metrics_page, method="GET", operation=METRICS_OPERATION),
        OperationRoute("/asyncapi.json", asyncapi_page, method="GET", operation=ASYNCAPI_OPERATION),
        OPENAPI_ROUTE,
        WebSocketRoute("/ws", socket.handle),
        WebSocketRoute(OPERATOR_SOCKET_PATH, operator_socket.handle),
        OperationRoute("/events", events.handle, method="GET", operation=EVENTS_OPERATION),
        OperationRoute("/admin", admin_page, method="GET", operation=ADMIN_PAGE_OPERATION),
        *api.routes(),
        *AdminApi(console, api.authenticate).routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(services.http_tracing or CarriedTraceContext)],
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
    )
