"""``insighthub serve``: the HTTP API, the WebSocket push and the status page (uvicorn).

Also home of ``run_demo_server``, which ``insighthub demo`` runs: the same server on SQLite
and the in-memory transport, with in-process workers and a seeded workspace to watch.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from dependency_injector import providers

from adapters.container import Container, build_container, close_container
from adapters.settings import Settings
from domain.events import DocumentStatusUpdated, Event
from domain.ports import MessagePublisher
from domain.result import Err
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from entrypoints.logs import configure_logging
from entrypoints.runtime import WORKER_KINDS, start_relay_thread, start_worker_threads
from entrypoints.samples import SAMPLES
from entrypoints.server import ServerOptions, create_app
from entrypoints.server.redaction import redact_all_handlers

log = logging.getLogger(__name__)

# uvicorn refuses bigger frames itself; the app refuses anything over its own, smaller limit.
WS_PROTOCOL_MAX_BYTES = 64 * 1024
DEMO_USER_ID = 1
DEMO_TOKEN_TTL_SECONDS = 12 * 3600
DEMO_STEP_SECONDS = 1.2
DEMO_WORKSPACE = "Demo workspace"


class _Stop(Exception):
    """SIGTERM or Ctrl-C arrived: shut down in order."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, not {raw}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API, the WebSocket status push and the status page",
        description="Serve the HTTP API, the authenticated WebSocket at /ws and the live status "
        "page at /, configured from the environment (DATABASE_URL, TRANSPORT, SECRET_KEY, …). "
        "With TRANSPORT=memory every kind of worker runs inside this process, "
        "since no other process can reach an in-memory queue; with any other transport run "
        "them with 'insighthub worker'.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument(
        "--no-workers",
        action="store_true",
        help="with TRANSPORT=memory, do not run the in-process workers",
    )
    parser.add_argument(
        "--step-delay",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="in-process workers pause this long at each processing step, so that progress "
        "can be watched (default 0)",
    )
    parser.add_argument(
        "--socket-queue",
        type=_positive_int,
        default=ServerOptions().socket_queue_size,
        metavar="FRAMES",
        help="frames a socket may have waiting before it is closed as too slow "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--max-sockets-per-user",
        type=_positive_int,
        default=ServerOptions().max_sockets_per_user,
        metavar="N",
        help="open WebSockets one user may hold; more are refused with 429 (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    container, settings = build_container()
    configure_logging(settings.log_format)
    redact_all_handlers()
    if not settings.secret_key_given:
        log.warning(
            "SECRET_KEY is not set: tokens are signed with a key that changes on every start "
            "and that no other instance shares"
        )
    return serve(
        container,
        settings,
        host=args.host,
        port=args.port,
        in_process_workers=settings.transport == "memory" and not args.no_workers,
        step_delay=args.step_delay,
        options=ServerOptions(
            socket_queue_size=args.socket_queue,
            max_sockets_per_user=args.max_sockets_per_user,
        ),
    )


class PacedPublisher(MessagePublisher):
    """Pauses after announcing each processing step, so that a person can watch it happen."""

    def __init__(self, inner: MessagePublisher, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def publish(self, event: Event) -> None:
        self._inner.publish(event)
        # Only workers announce "processing"; the API's own requests are never slowed.
        if (
            isinstance(event, DocumentStatusUpdated)
            and event.status is DocumentProcessingStatus.PROCESSING
        ):
            time.sleep(self._delay)

    def close(self) -> None:
        self._inner.close()


def _pace(container: Container, delay: float) -> None:
    if delay > 0:
        container.status_publisher.override(
            providers.Object(PacedPublisher(container.publisher(), delay))
        )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve(
    container: Container,
    settings: Settings,
    *,
    host: str,
    port: int,
    in_process_workers: bool,
    step_delay: float = 0.0,
    options: ServerOptions | None = None,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C, then stop the workers and close the container."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if in_process_workers:
            _pace(container, step_delay)
            threads = start_worker_threads(container, WORKER_KINDS, stop)
            if settings.delivery == "outbox":
                threads.append(start_relay_thread(container, stop))
        config = uvicorn.Config(
            create_app(container, settings, options),
            host=host,
            port=port,
            log_config=None,
            lifespan="on",
            ws_max_size=WS_PROTOCOL_MAX_BYTES,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        if on_started is not None:
            threading.Thread(
                target=_when_started, args=(server, on_started), name="on-started", daemon=True
            ).start()
        server.run()
        return 0 if server.started else 1
    except _Stop:
        return 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        close_container(container)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _when_started(server: uvicorn.Server, callback: Callable[[], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    callback()


def run_demo_server(args: argparse.Namespace) -> int:
    """``insighthub demo``: serve on 127.0.0.1 with a seeded workspace and print the URL."""
    environ = {**os.environ, "TRANSPORT": "memory", "DELIVERY": "direct"}
    container, settings = build_container(environ)
    configure_logging(settings.log_format, level=logging.WARNING)
    redact_all_handlers()
    host = "127.0.0.1"
    port: int = args.port
    token = container.token_issuer().issue(DEMO_USER_ID, DEMO_TOKEN_TTL_SECONDS)

    def started() -> None:
        print(
            f"InsightHub demo is running. Open this address in a browser:\n\n"
            f"    http://{host}:{port}/#token={token}\n\n"
            f"(signed in as user {DEMO_USER_ID}; press Ctrl-C to stop)",
            flush=True,
        )
        threading.Thread(target=_seed, args=(container,), name="demo-seed", daemon=True).start()

    return serve(
        container,
        settings,
        host=host,
        port=port,
        in_process_workers=True,
        step_delay=args.step_delay,
        on_started=started,
    )


def _seed(container: Container, *, timeout: float = 30.0) -> None:
    """A workspace with the sample documents, uploaded a few seconds apart to watch."""
    workspaces = container.workspaces()
    if workspaces.list(user_id=DEMO_USER_ID):
        return  # a previous run's data is still in the database
    created = workspaces.create(user_id=DEMO_USER_ID, name=DEMO_WORKSPACE)
    if isinstance(created, Err):
        log.error("demo: could not create the workspace: %s", created.error)
        return
    workspace_id = created.value.id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workspaces.get(user_id=DEMO_USER_ID, workspace_id=workspace_id)
        if isinstance(found, Err) or found.value.status is not WorkspaceStatus.PROVISIONING:
            break
        time.sleep(0.2)
    for filename, content in SAMPLES:
        time.sleep(2.0)
        uploaded = container.documents().upload(
            user_id=DEMO_USER_ID, workspace_id=workspace_id, filename=filename, content=[content]
        )
        if isinstance(uploaded, Err):
            log.error("demo: upload of %s refused: %s", filename, uploaded.error)
