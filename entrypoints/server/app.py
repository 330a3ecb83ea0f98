"""The app factory: the Starlette application, built from a container, doing no IO until started."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from adapters.container import Container
from adapters.settings import Settings
from application.tokens import TokenSigner
from domain.result import Err
from entrypoints.server.api import Api
from entrypoints.server.bridge import StatusBridge
from entrypoints.server.errors import ApiError, on_api_error, on_http_exception, on_unexpected
from entrypoints.server.hub import SocketHub
from entrypoints.server.metrics import ServerMetrics
from entrypoints.server.protocol import FIRST_PAGE_SIZE, MAX_FRAME_BYTES, RESUME_LIMIT
from entrypoints.server.snapshots import ScopeReader, SharedSnapshotReads, Snapshot
from entrypoints.server.sockets import MAX_INCOMING_FRAME_BYTES, MAX_SOCKETS_PER_USER, StatusSocket
from entrypoints.server.sse import StatusEvents

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


def _warm_up(container: Container) -> None:
    # Build the shared singletons once, on one thread, before requests race to build them.
    container.repository()
    container.status_service()
    container.workspaces()
    container.documents()
    container.feed()


def create_app(
    container: Container, settings: Settings, options: ServerOptions | None = None
) -> Starlette:
    """The server for ``container``; connects to nothing until its lifespan starts."""
    options = options or ServerOptions()
    signer = TokenSigner(settings.secret_key)
    metrics = ServerMetrics()
    runtime = _Runtime()

    def read_snapshot(user_id: int) -> Snapshot:
        workspaces = container.workspaces().list(user_id=user_id)
        documents = container.documents().list(user_id=user_id)
        if isinstance(documents, Err):
            raise RuntimeError(documents.error.message)
        return Snapshot(documents=documents.value, workspaces=workspaces)

    reader = ScopeReader(
        container.feed, first_page=options.first_page_size, resume_limit=options.resume_limit
    )
    hub = SocketHub(
        metrics,
        SharedSnapshotReads(read_snapshot),
        queue_size=options.socket_queue_size,
        reader=reader,
        max_frame_bytes=options.max_frame_bytes,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(_warm_up, container)
        hub.epoch = await reader.epoch()
        broker = await run_in_threadpool(container.broker)
        runtime.bridge = StatusBridge(broker, hub)
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

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        repository = container.repository()
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

    async def metrics_page(request: Request) -> Response:
        text = metrics.render(
            subscription_up=runtime.bridge is not None and runtime.bridge.alive,
            events_lost=container.status_service().lost_events,
        )
        text += (
            "# HELP status_feed_reads_total Reads of the change feed answering subscriptions "
            "(shared reads count once).\n"
            "# TYPE status_feed_reads_total counter\n"
            f"status_feed_reads_total {reader.reads}\n"
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    api = Api(container, signer, max_upload_bytes=settings.max_upload_bytes)
    socket = StatusSocket(
        hub,
        signer,
        allowed_origins=settings.allowed_origins,
        max_incoming_frame_bytes=options.max_incoming_frame_bytes,
        max_sockets_per_user=options.max_sockets_per_user,
    )
    events = StatusEvents(hub, signer, max_streams_per_user=options.max_sockets_per_user)
    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        WebSocketRoute("/ws", socket.handle),
        Route("/events", events.handle, methods=["GET"]),
        *api.routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
    )
