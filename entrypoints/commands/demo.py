"""``insighthub demo``: the whole system in one process."""

from __future__ import annotations

import argparse
import queue
import threading
import time

from adapters.container import Container, build_container, close_container
from domain.events import DocumentStatusUpdated, StatusEvent
from domain.result import Err
from entrypoints.runtime import WORKER_KINDS, start_worker_threads
from entrypoints.samples import SAMPLES

DEMO_USER_ID = 1


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


def run(args: argparse.Namespace) -> int:
    if not args.once:
        from entrypoints.commands.serve import run_demo_server

        return run_demo_server(args)
    return run_once(timeout=args.timeout)


def run_once(*, timeout: float) -> int:
    container, _ = build_container({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    events: queue.SimpleQueue[StatusEvent] = queue.SimpleQueue()
    stop = threading.Event()
    broker = container.broker()
    subscription = broker.subscribe_status(events.put)
    threads = start_worker_threads(container, WORKER_KINDS, stop)
    try:
        return _drive(container, events, timeout)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        subscription.close()
        close_container(container)


def _drive(container: Container, events: queue.SimpleQueue[StatusEvent], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    created = container.workspaces().create(user_id=DEMO_USER_ID, name="Demo workspace")
    if isinstance(created, Err):
        print(f"could not create the workspace: {created.error}")
        return 1
    workspace = created.value
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
                document = container.documents().upload(
                    user_id=DEMO_USER_ID,
                    workspace_id=workspace.id,
                    filename=filename,
                    content=[content],
                )
                if isinstance(document, Err):
                    print(f"upload of {filename} refused: {document.error}")
                    return 1
                waiting.add(("document", document.value.id))
    if waiting:
        print(f"timed out waiting for {sorted(waiting)}")
        return 1
    print("\nfinal states:")
    for event in final.values():
        print("  " + describe(event).replace("\n", "\n  "))
    return 0
