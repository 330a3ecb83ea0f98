"""The load generator: status updates, in a process of its own.

``python -m bench.loadgen throughput …`` measures, one after another in this one process, the
raw floor (psycopg UPDATE + COMMIT, then the raw client's confirmed publish), the pipeline
with ``direct`` delivery, and with ``outbox`` delivery (timed until the relay, a separate
``insighthub relay`` process, has published every event). ``python -m bench.loadgen latency
…`` sends updates at a fixed rate (or as fast as it can) and records when each committed.
Each prints one JSON line with its figures. Configuration comes from the environment, as for
``insighthub`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from adapters.container import Container, build_container, close_container
from adapters.settings import Settings
from bench.machine import machine_busy_seconds
from bench.services import libpq_url
from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.entities import Document, Workspace
from domain.events import DocumentStatusUpdated, encode
from domain.history import HistoryEntity, StatusHistoryEntry
from domain.ports import StatusRepository
from domain.problems import Problem
from domain.progress import Progress
from domain.result import Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus

PROCESSING = DocumentProcessingStatus.PROCESSING
BENCH_USER_ID = 4_200_000


def prepare_documents(container: Container, count: int, user_id: int = BENCH_USER_ID) -> list[int]:
    """``count`` documents in ``processing``, ready to take progress updates."""
    repository = container.repository()
    workspace = repository.add_workspace(user_id=user_id, name="benchmark")
    repository.update_workspace_status(
        WorkspaceStatusChange(workspace_id=workspace.id, status=WorkspaceStatus.READY)
    ).unwrap()
    ids = []
    for n in range(count):
        document = repository.add_document(
            user_id=user_id,
            workspace_id=workspace.id,
            filename=f"bench-{n}.txt",
            storage_key=f"bench/{n}.txt",
            progress=Progress.plan(["Parsing"]),
        )
        repository.update_document_status(
            DocumentStatusChange(document_id=document.id, status=PROCESSING)
        ).unwrap()
        ids.append(document.id)
    return ids


def sample_body(settings: Settings) -> bytes:
    """An encoded status event of the size the pipeline publishes."""
    event = DocumentStatusUpdated(
        document_id=1,
        user_id=BENCH_USER_ID,
        workspace_id=1,
        filename="bench-1.txt",
        status=PROCESSING,
        error=None,
        chunk_count=0,
        metadata={},
        progress=Progress.plan(["Parsing"]),
        version=2,
    )
    return encode(event)


# ---------------------------------------------------------------- the raw floor


class RawFloor:
    """UPDATE + COMMIT with psycopg, then one confirmed publish with the transport's client."""

    def __init__(self, settings: Settings, namespace: str) -> None:
        self._database = psycopg.connect(libpq_url(settings.database_url))
        self._body = sample_body(settings)
        self._publish, self._close = _raw_publisher(settings, namespace)

    def update(self, document_id: int) -> None:
        with self._database.cursor() as cursor:
            cursor.execute(
                "UPDATE documents SET version = version + 1, updated_at = now() WHERE id = %s",
                (document_id,),
            )
        self._database.commit()
        self._publish(self._body)

    def update_all(self, documents: list[int]) -> None:
        for document_id in documents:
            self.update(document_id)

    def close(self) -> None:
        self._close()
        self._database.close()


def _raw_publisher(
    settings: Settings, namespace: str
) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    if settings.transport == "rabbitmq":
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
        channel = connection.channel()
        channel.exchange_declare(namespace, exchange_type="topic", durable=True)
        channel.confirm_delivery()
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)

        def publish_rabbitmq(body: bytes) -> None:
            channel.basic_publish(namespace, "document.status.updated", body, properties)

        return publish_rabbitmq, connection.close
    if settings.transport == "nats":
        import nats

        from adapters.nats.topology import NatsTopology

        loop = asyncio.new_event_loop()
        client = loop.run_until_complete(nats.connect(settings.nats_url))
        subject = NatsTopology(namespace).status_subject("document.status.updated")

        async def publish_and_flush(body: bytes) -> None:
            await client.publish(subject, body)
            await client.flush()

        def publish_nats(body: bytes) -> None:
            loop.run_until_complete(publish_and_flush(body))

        def close_nats() -> None:
            loop.run_until_complete(client.close())
            loop.close()

        return publish_nats, close_nats
    if settings.transport == "redis":
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url)
        channel_name = f"{namespace}:status"

        def publish_redis(body: bytes) -> None:
            redis_client.publish(channel_name, body)

        return publish_redis, redis_client.close
    raise SystemExit(f"no raw floor for transport {settings.transport!r}")


# ---------------------------------------------------------------- throughput


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Profile the block with pyinstrument into ``path`` (text), when asked."""
    if not path:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        Path(path).write_text(text.replace(str(Path.cwd()) + "/", ""))


def _rate(count: int, seconds: float, cpu_seconds: float = 0.0) -> dict[str, float]:
    return {
        "count": count,
        "seconds": seconds,
        "per_second": count / seconds,
        "cpu_ms_per_update": 1000 * cpu_seconds / count,
    }


def unsent(database: psycopg.Connection[Any]) -> int:
    row = database.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
    database.commit()
    return int(row[0]) if row else 0


def wait_until_published(database: psycopg.Connection[Any], timeout: float) -> None:
    """Until the relay has published every outbox row; a relay that falls behind ends the run."""
    deadline = time.monotonic() + timeout
    while unsent(database):
        if time.monotonic() > deadline:
            raise SystemExit("the relay did not publish everything in time")
        time.sleep(0.002)


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Floor, direct and outbox in turn; with ``--profile``, a profiled pass of each after."""
    results: dict[str, Any] = {}
    direct, settings = build_container({**_environ(), "DELIVERY": "direct"})
    try:
        ids = prepare_documents(direct, args.documents)
        targets = [ids[n % len(ids)] for n in range(args.count)]
        warm = targets[: max(1, args.count // 20)]
        # Profiling slows what it watches: the profiled passes come after the timed ones.
        sample = targets[: max(1, args.count // 3)] if args.profile else []
        floor = RawFloor(settings, args.namespace) if "floor" in args.phases else None
        service = direct.status_service()

        def update_all(documents: list[int]) -> None:
            for document_id in documents:
                if service.update_document_status(document_id, PROCESSING).is_err():
                    raise SystemExit(f"update of {document_id} refused")

        # Floor and direct take turns, a slice of the updates at a time: a moment of load
        # from elsewhere on the machine falls on both alike. Wall and CPU time add up per phase.
        phases: dict[str, Callable[[list[int]], None]] = {}
        if floor is not None:
            phases["floor"] = floor.update_all
        if "direct" in args.phases:
            phases["direct"] = update_all
        try:
            for run in phases.values():
                run(warm)
            spent = {name: [0.0, 0.0] for name in phases}
            slices = max(1, args.rounds)
            size = max(1, len(targets) // slices)
            for start in range(0, len(targets), size):
                part = targets[start : start + size]
                for name, run in phases.items():
                    began, cpu = time.perf_counter(), time.process_time()
                    run(part)
                    spent[name][0] += time.perf_counter() - began
                    spent[name][1] += time.process_time() - cpu
            for name, (seconds, cpu_seconds) in spent.items():
                results[name] = _rate(len(targets), seconds, cpu_seconds)
            if "direct" in results:
                results["direct"]["lost_events"] = service.lost_events
            # Profiling slows what it watches: the profiled passes come after the timed ones.
            for name, run in phases.items():
                with profiled(args.profile and f"{args.profile}-{name}.txt"):
                    run(sample)
        finally:
            if floor is not None:
                floor.close()
    finally:
        close_container(direct)
    if "outbox" in args.phases:
        results["outbox"] = _outbox_throughput(args, ids, targets)
    return results


def _outbox_throughput(args: argparse.Namespace, ids: list[int], targets: list[int]) -> Any:
    outbox, settings = build_container({**_environ(), "DELIVERY": "outbox"})
    watcher = psycopg.connect(libpq_url(settings.database_url))
    try:
        service = outbox.status_service()
        deadline = time.monotonic() + 60
        for document_id in targets[: max(1, len(targets) // 20)]:
            service.update_document_status(document_id, PROCESSING)
        # The relay must be draining before the clock starts: a warm-up batch shows it is.
        while unsent(watcher) and time.monotonic() < deadline:
            time.sleep(0.01)
        started, cpu = time.perf_counter(), time.process_time()
        for document_id in targets:
            if service.update_document_status(document_id, PROCESSING).is_err():
                raise SystemExit(f"update of {document_id} refused")
        committed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        wait_until_published(watcher, args.drain_timeout)
        elapsed = time.perf_counter() - started
        if args.profile:
            with profiled(f"{args.profile}-outbox.txt"):
                for document_id in targets[: max(1, len(targets) // 3)]:
                    service.update_document_status(document_id, PROCESSING)
        return {**_rate(len(targets), elapsed, cpu), "commit_seconds": committed}
    finally:
        watcher.close()
        close_container(outbox)


# ---------------------------------------------------------------- concurrent writers


def _write_all(service: Any, documents: list[int], count: int) -> None:
    for n in range(count):
        document_id = documents[n % len(documents)]
        if service.update_document_status(document_id, PROCESSING).is_err():
            raise SystemExit(f"update of {document_id} refused")


def _writer_process(
    environ: dict[str, str],
    documents: list[int],
    count: int,
    start: Any,
    results: Any,
) -> None:
    """One writer in a process of its own: its own container, pool and publisher."""
    container, _ = build_container(environ)
    try:
        service = container.status_service()
        _write_all(service, documents[:1], 1)
        results.put(("ready", 0.0))
        start.wait()
        cpu = time.process_time()
        _write_all(service, documents, count)
        results.put(("done", time.process_time() - cpu))
    except BaseException as exc:
        results.put(("failed", repr(exc)))
        raise
    finally:
        close_container(container)


class BacklogWatch:
    """Samples the outbox's unsent rows while the writers write: the relay's backlog."""

    def __init__(self, database: psycopg.Connection[Any], interval: float = 0.05) -> None:
        import threading

        self._database = database
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(unsent(self._database))
            self._stop.wait(self._interval)

    def __enter__(self) -> BacklogWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def writers(args: argparse.Namespace) -> dict[str, Any]:
    """``--writers`` writers (threads or processes) on documents of their own, end to end.

    Each writer updates only its own documents. With outbox delivery the clock stops when the
    relay(s) have published everything; the outbox's unsent rows are sampled meanwhile.
    """
    import multiprocessing
    import threading

    environ = {**_environ(), "DELIVERY": args.delivery}
    container, settings = build_container(environ)
    watcher = psycopg.connect(libpq_url(settings.database_url))
    try:
        ids = prepare_documents(container, args.writers * args.documents)
        mine = [ids[w :: args.writers] for w in range(args.writers)]
        _drain(watcher)
        cpu_seconds = 0.0
        with BacklogWatch(watcher) as backlog:
            if args.mode == "threads":
                service = container.status_service()
                for documents in mine:
                    _write_all(service, documents[:1], 1)
                start = threading.Barrier(args.writers + 1)

                def run(documents: list[int]) -> None:
                    start.wait()
                    _write_all(service, documents, args.count)

                threads = [threading.Thread(target=run, args=(d,)) for d in mine]
                for thread in threads:
                    thread.start()
                cpu = time.process_time()
                start.wait()
                started = time.perf_counter()
                busy = machine_busy_seconds()
                for thread in threads:
                    thread.join()
                committed = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu
            else:
                spawn = multiprocessing.get_context("spawn")
                go = spawn.Event()
                results = spawn.Queue()
                children = [
                    spawn.Process(
                        target=_writer_process, args=(environ, d, args.count, go, results)
                    )
                    for d in mine
                ]
                for child in children:
                    child.start()
                for _ in children:
                    kind, value = results.get(timeout=120)
                    if kind == "failed":
                        raise SystemExit(f"a writer failed: {value}")
                started = time.perf_counter()
                busy = machine_busy_seconds()
                go.set()
                for _ in children:
                    kind, value = results.get(timeout=600)
                    if kind == "failed":
                        raise SystemExit(f"a writer failed: {value}")
                    cpu_seconds += float(value)
                committed = time.perf_counter() - started
            at_commit = unsent(watcher)
            wait_until_published(watcher, args.drain_timeout)
            elapsed = time.perf_counter() - started
            # Writers, relays, server, database and broker: every process the updates cost.
            machine_cpu_seconds = machine_busy_seconds() - busy
        if args.mode == "processes":
            for child in children:
                child.join(30)
        total = args.writers * args.count
        return {
            **_rate(total, elapsed, cpu_seconds),
            "commit_seconds": committed,
            "commit_per_second": total / committed,
            "backlog_max": max(backlog.samples, default=0),
            "backlog_at_commit": at_commit,
            "drain_seconds": elapsed - committed,
            "machine_cpu_ms_per_update": 1000 * machine_cpu_seconds / total,
            "documents": ids,
        }
    finally:
        watcher.close()
        close_container(container)


# ---------------------------------------------------------------- latency


class CommitClock(StatusRepository):
    """Wraps the repository and notes when each status change committed (time.time())."""

    def __init__(self, inner: StatusRepository) -> None:
        self._inner = inner
        self.commits: list[tuple[int, int, float]] = []

    def epoch(self) -> str:
        return self._inner.epoch()

    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        changed = self._inner.update_document_status(change)
        if isinstance(changed, Ok):
            self.commits.append((changed.value.id, changed.value.version, time.time()))
        return changed

    def add_workspace(self, *, user_id: int, name: str) -> Workspace:
        return self._inner.add_workspace(user_id=user_id, name=name)

    def add_document(self, **kwargs: Any) -> Document:
        return self._inner.add_document(**kwargs)

    def get_document(self, document_id: int) -> Document | None:
        return self._inner.get_document(document_id)

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        return self._inner.get_workspace(workspace_id)

    def list_documents(self, *, user_id: int, workspace_id: int | None = None) -> list[Document]:
        return self._inner.list_documents(user_id=user_id, workspace_id=workspace_id)

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        return self._inner.list_workspaces(user_id=user_id)

    def update_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        return self._inner.update_workspace_status(change)

    def history(
        self, entity: HistoryEntity, entity_id: int, *, limit: int, after: int | None = None
    ) -> list[StatusHistoryEntry]:
        return self._inner.history(entity, entity_id, limit=limit, after=after)


def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Each phase (``DELIVERY@RATE``, rate 0 = as fast as possible) in turn, commits noted."""
    from application.status_service import StatusService

    commits: list[tuple[str, int, int, float]] = []
    summary: dict[str, Any] = {}
    direct, settings = build_container({**_environ(), "DELIVERY": "direct"})
    outbox, _ = build_container({**_environ(), "DELIVERY": "outbox"})
    watcher = psycopg.connect(libpq_url(settings.database_url))
    try:
        ids = prepare_documents(direct, args.documents)
        for phase in args.phases.split(","):
            delivery, rate_text = phase.split("@")
            rate = float(rate_text)
            count = args.count if rate > 0 else args.burst
            container = direct if delivery == "direct" else outbox
            clock = CommitClock(container.repository())
            publisher = container.publisher() if delivery == "direct" else None
            service = StatusService(clock, publisher)
            # One update per document first, unmeasured: connections and caches warm up.
            for document_id in ids:
                service.update_document_status(document_id, PROCESSING)
            _drain(watcher)
            commits += [("warm-up", *commit) for commit in clock.commits]
            clock.commits.clear()
            interval = 1.0 / rate if rate > 0 else 0.0
            started = time.perf_counter()
            for n in range(count):
                if interval:
                    delay = started + n * interval - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                service.update_document_status(ids[n % len(ids)], PROCESSING)
            elapsed = time.perf_counter() - started
            _drain(watcher)
            time.sleep(0.2)
            commits += [(phase, *commit) for commit in clock.commits]
            summary[phase] = {"count": count, "per_second": count / elapsed}
        Path(args.out).write_text(json.dumps(commits))
        return {"phases": summary, "commits": len(commits)}
    finally:
        watcher.close()
        close_container(outbox)
        close_container(direct)


def _drain(watcher: psycopg.Connection[Any], timeout: float = 60.0) -> None:
    """Wait until the relay has published everything in the outbox."""
    deadline = time.monotonic() + timeout
    while unsent(watcher) and time.monotonic() < deadline:
        time.sleep(0.005)


def _environ() -> Mapping[str, str]:
    import os

    return dict(os.environ)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    commands = parser.add_subparsers(dest="command", required=True)
    rate = commands.add_parser("throughput")
    rate.add_argument("--namespace", required=True)
    rate.add_argument("--count", type=int, default=2000)
    rate.add_argument("--documents", type=int, default=100)
    rate.add_argument("--phases", default="floor,direct,outbox")
    rate.add_argument("--drain-timeout", type=float, default=120.0)
    rate.add_argument("--profile", default="")
    rate.add_argument("--rounds", type=int, default=10, help="turns floor and direct take")
    timing = commands.add_parser("latency")
    timing.add_argument("--phases", default="direct@200,direct@0,outbox@200,outbox@0")
    timing.add_argument("--count", type=int, default=2000, help="updates of a paced phase")
    timing.add_argument("--burst", type=int, default=2000, help="updates of an unpaced phase")
    timing.add_argument("--documents", type=int, default=20)
    timing.add_argument("--out", required=True)
    concurrent = commands.add_parser("writers")
    concurrent.add_argument("--writers", type=int, default=8)
    concurrent.add_argument("--mode", choices=("threads", "processes"), default="threads")
    concurrent.add_argument("--delivery", choices=("direct", "outbox"), default="outbox")
    concurrent.add_argument("--count", type=int, default=250, help="updates per writer")
    concurrent.add_argument("--documents", type=int, default=4, help="documents per writer")
    concurrent.add_argument("--drain-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    handlers = {"throughput": throughput, "latency": latency, "writers": writers}
    print(json.dumps(handlers[args.command](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
