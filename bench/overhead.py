"""Benchmark 9: a worker's CPU per document, split into the steps' own work and the rest.

In-process workers (one thread per queue, as ``insighthub worker all`` runs them) on the real
PostgreSQL and RabbitMQ take a corpus of text documents. Each thread's CPU time is measured
around every delivery it handles (``Worker.run_once``: receiving, leases, status updates,
the hand-off to the next stage, acknowledging) and around every step's own call (parse,
chunk, embed, index, graph). The overhead of a stage is what its deliveries cost beyond its
steps, as a share of the deliveries' CPU.

The sandboxed extraction runs in a child process: its CPU (the interpreter's start, 12-14 ms,
and the extraction itself) is counted as the parse step's own work, and shown apart. It is
the price of reading an untrusted file safely, paid once per extraction whatever the worker
machinery does; counting it as overhead would hide the machinery's cost behind it, and
dropping it would hide the parse step's real cost.
"""

from __future__ import annotations

import resource
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bench.results import Row, unavailable
from bench.services import private_workspace

if TYPE_CHECKING:
    from bench.suite import Context

OVERHEAD_USER_ID = 4_600_000
BENCHMARK = "9 worker overhead"
STEP_METHODS = ("parse", "chunk", "embed", "index", "build_graph")


class CpuLedger:
    """CPU seconds per worker queue: all of its deliveries, and its steps' own calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[str, float] = defaultdict(float)
        self.steps: dict[str, float] = defaultdict(float)
        self.sandbox: dict[str, float] = defaultdict(float)
        self.handled: dict[str, int] = defaultdict(int)
        # Document status changes made by the machinery around the steps: their CPU, and
        # how many (each one statement and a published event).
        self.status: dict[str, float] = defaultdict(float)
        self.status_changes: dict[str, int] = defaultdict(int)

    @staticmethod
    def queue() -> str:
        # Worker threads are named worker-<queue>-<n>.
        return threading.current_thread().name.split("-")[1]

    def add(self, table: dict[str, float], seconds: float) -> None:
        with self._lock:
            table[self.queue()] += seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measured(ledger: CpuLedger) -> Iterator[None]:
    """Wrap ``Worker.run_once`` and the steps so that their CPU lands in ``ledger``."""
    from application.pipeline import DocumentSteps
    from application.status_service import StatusService
    from application.worker import Worker

    originals: dict[tuple[type, str], Any] = {}

    def wrap_delivery(original: Callable[..., bool]) -> Callable[..., bool]:
        def run_once(self: Any, timeout: float) -> bool:
            began = time.thread_time()
            handled = original(self, timeout)
            if handled:
                ledger.add(ledger.deliveries, time.thread_time() - began)
                with ledger._lock:
                    ledger.handled[ledger.queue()] += 1
            return handled

        return run_once

    def wrap_step(original: Callable[..., None], sandboxed: bool) -> Callable[..., None]:
        def step(self: Any, context: Any) -> None:
            began, children = time.thread_time(), _children_cpu()
            try:
                original(self, context)
            finally:
                ledger.add(ledger.steps, time.thread_time() - began)
                if sandboxed:
                    # The child ran while this thread waited: its CPU is the step's too.
                    child = _children_cpu() - children
                    ledger.add(ledger.sandbox, child)

        return step

    def wrap_status(original: Callable[..., Any]) -> Callable[..., Any]:
        def change_document_status(self: Any, change: Any) -> Any:
            began = time.thread_time()
            try:
                return original(self, change)
            finally:
                if threading.current_thread().name.startswith("worker-"):
                    ledger.add(ledger.status, time.thread_time() - began)
                    with ledger._lock:
                        ledger.status_changes[ledger.queue()] += 1

        return change_document_status

    originals[(StatusService, "change_document_status")] = StatusService.change_document_status
    StatusService.change_document_status = wrap_status(  # type: ignore[method-assign]
        StatusService.change_document_status
    )
    originals[(Worker, "run_once")] = Worker.run_once
    Worker.run_once = wrap_delivery(Worker.run_once)  # type: ignore[method-assign]
    for name in STEP_METHODS:
        originals[(DocumentSteps, name)] = getattr(DocumentSteps, name)
        setattr(DocumentSteps, name, wrap_step(getattr(DocumentSteps, name), name == "parse"))
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def worker_overhead(context: Context) -> list[Row]:
    """One row per stage: the overhead's share of the stage's CPU per document."""
    try:
        ledger = _run(context)
    except Exception as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
        return [unavailable(BENCHMARK, "every stage", "% overhead", text)]
    return overhead_rows(ledger, context.sizes.corpus)


def overhead_rows(ledger: CpuLedger, documents: int) -> list[Row]:
    """The rows of ``ledger``: per stage, CPU per document and the overhead's share."""
    rows = []
    for queue, total in ledger.deliveries.items():
        if queue == "provisioning":
            continue
        sandbox = ledger.sandbox.get(queue, 0.0)
        own = ledger.steps.get(queue, 0.0) + sandbox
        whole = total + sandbox
        around = max(0.0, whole - own)
        share = 100 * around / whole if whole else 0.0
        handled = max(1, ledger.handled.get(queue, 0))
        note = (
            f"{1000 * whole / handled:.1f} ms CPU per document: steps {1000 * own / handled:.1f}"
            f", around them {1000 * around / handled:.1f}"
        )
        if sandbox:
            note += f" (steps include the sandbox's {1000 * sandbox / handled:.1f} ms)"
        changes = ledger.status_changes.get(queue, 0) / handled
        status_ms = 1000 * ledger.status.get(queue, 0.0) / handled
        if changes:
            note += (
                f"; of what is around them, {changes:.1f} status changes per document "
                f"({status_ms:.1f} ms, {status_ms / changes:.2f} ms each)"
            )
        rows.append(
            Row(
                BENCHMARK,
                f"{queue}, {documents} documents",
                "% overhead",
                share,
                "target",
                10.0,
                "≤ 10% of the stage's CPU",
                1.0,
                lower_is_better=True,
                extra={
                    "cpu_ms_per_document": 1000 * whole / handled,
                    "step_ms_per_document": 1000 * own / handled,
                    "sandbox_ms_per_document": 1000 * sandbox / handled,
                    "documents": handled,
                    "status_changes_per_document": changes,
                    "status_ms_per_document": status_ms,
                },
                note=note,
            )
        )
    return rows


def _run(context: Context) -> CpuLedger:
    from adapters.bootstrap import bootstrap
    from bench.suite import corpus
    from domain.result import Err
    from entrypoints.runtime import WORKER_KINDS, start_worker_threads

    ledger = CpuLedger()
    with (
        private_workspace(context.endpoints) as workspace,
        tempfile.TemporaryDirectory() as files,
        measured(ledger),
    ):
        environ = workspace.environ("rabbitmq", storage_dir=files)
        # The corpus goes in at once: no per-user upload rate or document quota applies.
        environ.update({"UPLOADS_PER_MINUTE": "1000000", "QUOTA_DOCUMENTS": "1000000"})
        services = bootstrap(environ)
        stop = threading.Event()
        threads = start_worker_threads(services, WORKER_KINDS, stop, poll_seconds=0.05)
        try:
            created = services.workspaces.create(user_id=OVERHEAD_USER_ID, name="overhead")
            if isinstance(created, Err):
                raise RuntimeError(f"workspace refused: {created.error}")
            workspace_id = created.value.id
            _wait(lambda: _status(services.repository.get_workspace(workspace_id)) == "ready")
            ids = []
            for filename, content in corpus(context.sizes.corpus):
                uploaded = services.documents.upload(
                    user_id=OVERHEAD_USER_ID,
                    workspace_id=workspace_id,
                    filename=filename,
                    content=[content],
                )
                if isinstance(uploaded, Err):
                    raise RuntimeError(f"upload refused: {uploaded.error}")
                ids.append(uploaded.value.id)

            def settled() -> bool:
                states = [_status(services.repository.get_document(i)) for i in ids]
                return all(state in ("ready", "failed") for state in states)

            _wait(settled)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            services.close()
    return ledger


def _status(entity: Any) -> str:
    if entity is None:
        return ""
    status = getattr(entity, "processing_status", None) or entity.status
    return str(status.value)


def _wait(condition: Callable[[], bool], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the corpus did not settle in {timeout} s")
        time.sleep(0.1)
