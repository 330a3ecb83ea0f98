"""``insighthub serve``: the HTTP API, the WebSocket push and the status page (uvicorn)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from adapters.bootstrap import NO_OVERRIDES, Overrides, Services, bootstrap
from entrypoints.logs import configure_logging
from entrypoints.runtime import WORKER_KINDS, start_relay_thread, start_worker_threads
from entrypoints.server import ServerOptions, create_app
from entrypoints.server.redaction import redact_all_handlers

log = logging.getLogger(__name__)

# uvicorn refuses bigger frames itself; the app refuses anything over its own, smaller limit.
WS_PROTOCOL_MAX_BYTES = 64 * 1024


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


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    services = bootstrap(step_delay=args.step_delay, overrides=overrides)
    settings = services.settings
    configure_logging(settings.log_format)
    redact_all_handlers()
    if not settings.secret_key_given:
        log.warning(
            "SECRET_KEY is not set: tokens are signed with a key that changes on every start "
            "and that no other instance shares"
        )
    return serve(
        services,
        host=args.host,
        port=args.port,
        in_process_workers=settings.transport == "memory" and not args.no_workers,
        options=ServerOptions(
            socket_queue_size=args.socket_queue,
            max_sockets_per_user=args.max_sockets_per_user,
        ),
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve(
    services: Services,
    *,
    host: str,
    port: int,
    in_process_workers: bool,
    options: ServerOptions | None = None,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Start ``services``, serve until SIGTERM or Ctrl-C, then stop the workers and close."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        services.start()
        if in_process_workers:
            threads = start_worker_threads(services, WORKER_KINDS, stop)
            if services.settings.delivery == "outbox":
                threads.append(start_relay_thread(services, stop))
        config = uvicorn.Config(
            create_app(services, options),
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
        services.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _when_started(server: uvicorn.Server, callback: Callable[[], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    callback()
