"""``insighthub demo``: the whole system in one process, with sample documents to watch.

By default the server (``insighthub serve`` on SQLite and the in-memory transport, with
in-process workers) and a seeded workspace, watched in a browser; with ``--once``, one run
in memory whose status events are printed in the terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import threading
import time

from adapters.bootstrap import NO_OVERRIDES, Overrides, Services, bootstrap
from domain.entities import Workspace
from domain.events import DocumentStatusUpdated, StatusEvent
from domain.result import Err
from domain.status import WorkspaceStatus
from entrypoints.commands.serve import serve
from entrypoints.logs import configure_logging
from entrypoints.runtime import WORKER_KINDS, start_worker_threads
from entrypoints.samples import SAMPLES
from entrypoints.server.redaction import redact_all_handlers

log = logging.getLogger(__name__)

DEMO_USER_ID = 1
DEMO_TOKEN_TTL_SECONDS = 12 * 3600
DEMO_WORKSPACE = "Demo workspace"
DEMO_HOST = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run everything in one process on the embedded defaults",
        description="Create a workspace, upload sample documents, and follow every status "
        "change, all in one process with in-memory persistence and transport.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print the status events of one run in the terminal and exit",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="with --once: seconds to wait (default 30)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port of the page on 127.0.0.1 (default 8000)"
    )
    parser.add_argument(
        "--step-delay",
        type=float,
        default=1.2,
        metavar="SECONDS",
        help="pause of the in-process workers at each step, so progress can be watched "
        "(default 1.2)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    if args.once:
        return run_once(timeout=args.timeout, overrides=overrides)
    return run_server(port=args.port, step_delay=args.step_delay, overrides=overrides)


def describe(event: StatusEvent) -> str:
    if isinstance(event, DocumentStatusUpdated):
        progress = event.progress
        step = progress.current or f"{progress.completed_count}/{len(progress.steps)} done"
        line = (
            f"document  {event.document_id:<3} {event.filename:<22} "
            f"{event.status.value:<11} v{event.version:<3} step: {step}"
        )
        if event.error:
            line += f"\n          error: {event.error}"
        return line
    detail = f"  {event.message}" if event.message else ""
    return (
        f"workspace {event.workspace_id:<3} {event.name:<22} "
        f"{event.status.value:<11} v{event.version:<3}{detail}"
    )


def _create_workspace(services: Services) -> Workspace | str:
    """The demo's workspace, or why it could not be created."""
    created = services.workspaces.create(user_id=DEMO_USER_ID, name=DEMO_WORKSPACE)
    return created.error.message if isinstance(created, Err) else created.value


def _upload(services: Services, workspace_id: int, filename: str, content: bytes) -> int | str:
    """The id of the uploaded sample, or why it was refused."""
    uploaded = services.documents.upload(
        user_id=DEMO_USER_ID, workspace_id=workspace_id, filename=filename, content=[content]
    )
    return uploaded.error.message if isinstance(uploaded, Err) else uploaded.value.id


# ---------------------------------------------------------------- in a browser


def run_server(*, port: int, step_delay: float, overrides: Overrides = NO_OVERRIDES) -> int:
    """Serve on 127.0.0.1 with a seeded workspace and print the URL to open."""
    environ = {**os.environ, "TRANSPORT": "memory", "DELIVERY": "direct"}
    services = bootstrap(environ, step_delay=step_delay, overrides=overrides)
    settings = services.settings
    configure_logging(settings.log_format, level=logging.WARNING)
    redact_all_handlers()
    token = services.token_issuer.issue(DEMO_USER_ID, DEMO_TOKEN_TTL_SECONDS)

    def started() -> None:
        print(
            f"InsightHub demo is running. Open this address in a browser:\n\n"
            f"    http://{DEMO_HOST}:{port}/#token={token}\n\n"
            f"(signed in as user {DEMO_USER_ID}; press Ctrl-C to stop)",
            flush=True,
        )
        threading.Thread(target=_seed, args=(services,), name="demo-seed", daemon=True).start()

    return serve(services, host=DEMO_HOST, port=port, in_process_workers=True, on_started=started)


def _seed(services: Services, *, timeout: float = 30.0) -> None:
    """A workspace with the sample documents, uploaded a few seconds apart to watch."""
    workspaces = services.workspaces
    if workspaces.list(user_id=DEMO_USER_ID):
        return  # a previous run's data is still in the database
    workspace = _create_workspace(services)
    if isinstance(workspace, str):
        log.error("demo: could not create the workspace: %s", workspace)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workspaces.get(user_id=DEMO_USER_ID, workspace_id=workspace.id)
        if isinstance(found, Err) or found.value.status is not WorkspaceStatus.PROVISIONING:
            break
        time.sleep(0.2)
    for filename, content in SAMPLES:
        time.sleep(2.0)
        uploaded = _upload(services, workspace.id, filename, content)
        if isinstance(uploaded, str):
            log.error("demo: upload of %s refused: %s", filename, uploaded)


# ---------------------------------------------------------------- in the terminal


def run_once(*, timeout: float, overrides: Overrides = NO_OVERRIDES) -> int:
    """One run in memory, every status event printed; 0 once everything has settled."""
    services = bootstrap({"DATABASE_URL": "memory://", "TRANSPORT": "memory"}, overrides=overrides)
    configure_logging(services.settings.log_format, level=logging.WARNING)
    events: queue.SimpleQueue[StatusEvent] = queue.SimpleQueue()
    stop = threading.Event()
    subscription = services.broker.subscribe_status(events.put)
    threads = start_worker_threads(services, WORKER_KINDS, stop)
    try:
        return _drive(services, events, timeout)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        subscription.close()
        services.close()


def _drive(services: Services, events: queue.SimpleQueue[StatusEvent], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    workspace = _create_workspace(services)
    if isinstance(workspace, str):
        print(f"could not create the workspace: {workspace}")
        return 1
    terminal = {"ready", "failed", "error"}
    waiting = {("workspace", workspace.id)}
    uploaded = False
    final: dict[tuple[str, int], StatusEvent] = {}
    while waiting and time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        print(describe(event), flush=True)
        key = (
            ("document", event.document_id)
            if isinstance(event, DocumentStatusUpdated)
            else ("workspace", event.workspace_id)
        )
        final[key] = event
        if event.status.value in terminal:
            waiting.discard(key)
        if not uploaded and key == ("workspace", workspace.id) and event.status.value == "ready":
            uploaded = True
            for filename, content in SAMPLES:
                document = _upload(services, workspace.id, filename, content)
                if isinstance(document, str):
                    print(f"upload of {filename} refused: {document}")
                    return 1
                waiting.add(("document", document))
    if waiting:
        print(f"timed out waiting for {sorted(waiting)}")
        return 1
    print("\nfinal states:")
    for event in final.values():
        print("  " + describe(event).replace("\n", "\n  "))
    return 0
