"""A whole deployment for one fault scenario: real processes on real servers, and the counting.

``Deployment`` owns a private PostgreSQL schema, a private namespace on the broker (a unique
RabbitMQ exchange, or a private NATS / Redis server on a free port), optional TCP proxies in
front of the broker and the database (the faults are cut there, never on a shared service),
the ``insighthub serve|worker|relay`` subprocesses, browser-protocol clients, and an observer
subscribed to the status broadcast directly (not through any proxy) that records every status
event the broker carried. ``figures`` compares all of that with the database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from adapters.container import Container, build_container, close_container
from adapters.sql.database import Database, migrate
from adapters.sql.records import documents, outbox, workspaces
from domain.events import StatusEvent, entity_key
from tests.e2e.conftest import (
    GOOD_TEXT,
    TEST_UPLOAD_LIMIT,
    ServerProcess,
    clean_environ,
)
from tests.integration.conftest import private_postgres_schema
from tests.support.processes import free_port
from tests.support.proxy import TcpProxy
from tests.support.ws_client import EntityKey, Link, Shown, StatusClient

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
TRANSPORTS = ("rabbitmq", "nats", "redis")
CONVERGE_SECONDS = 90.0
# How long a process may take to start: on a machine shared by several test runs an
# interpreter can need half a minute just to import. Waits end as soon as the process answers;
# this is only the ceiling past which it is taken not to start.
STARTUP_SECONDS = 120.0
TERMINAL = {"ready", "failed", "error"}


@dataclass
class Figures:
    """One row of the reliability table."""

    scenario: str
    transport: str
    committed: int
    published: int
    delivered: int
    lost: int
    duplicates: int
    converged: bool
    seconds: float
    notes: list[str] = field(default_factory=list)
    # Resume, where a scenario measures it (``None``: not measured): the reconnections, how
    # many were answered ``resumed`` in every scope, the bytes of their answers, and the
    # bytes a cursor-less answer of the same scopes (a first page) would have been instead.
    reconnects: int | None = None
    resumed: int = 0
    reconnect_bytes: int = 0
    snapshot_bytes: int = 0
    # Seconds until every reconnecting socket was answered, and the feed reads that took.
    resume_seconds: float | None = None
    feed_reads: int | None = None
    # Whether the fault struck where the scenario aims it (a kill between two given steps):
    # a scenario whose fault missed has shown nothing, however well the system did.
    exercised: bool = True

    @property
    def holds(self) -> bool:
        resumed = self.reconnects is None or self.resumed == self.reconnects
        return self.lost == 0 and self.converged and resumed and self.exercised


@dataclass
class Process:
    """A subprocess of the deployment, with its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last words, as a crash or the OOM killer."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class PrivateServer:
    """A NATS (JetStream) or Redis server of our own on a free loopback port."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / f"{kind}-data"
        data.mkdir()
        if kind == "nats":
            command = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js"]
            command += ["-sd", str(data)]
        else:
            command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            command += ["--save", "", "--appendonly", "no", "--dir", str(data)]
        log_file = (workdir / f"{kind}.log").open("wb")
        self._process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"private {kind} server did not start")

    def close(self) -> None:
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        if self._process.poll() is None:
            self._process.kill()


class Observer:
    """Every status event the broker carries for the deployment's users, as received."""

    def __init__(self, container: Container, users: set[int]) -> None:
        self._users = users
        self._lock = threading.Lock()
        self.received: list[StatusEvent] = []
        self.resyncs = 0
        self._subscription = container.broker().subscribe_status(self._on_event, self._on_resync)

    def _on_event(self, event: StatusEvent) -> None:
        if event.user_id in self._users:
            with self._lock:
                self.received.append(event)

    def _on_resync(self) -> None:
        self.resyncs += 1

    def events(self) -> list[StatusEvent]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._subscription.close()


class Deployment:
    """Everything one scenario runs against; a context manager that cleans up after itself."""

    def __init__(
        self,
        transport: str,
        *,
        broker_proxy: bool = False,
        database_proxy: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.transport = transport
        self._stack = contextlib.ExitStack()
        self.workdir = Path(tempfile.mkdtemp(prefix="insighthub-faults-"))
        self.keep_workdir = False
        self._stack.callback(self._remove_workdir)
        self.secret = secrets.token_urlsafe(32)
        self.namespace = f"faults-{uuid.uuid4().hex[:10]}"
        self.users: set[int] = set()
        self.workspaces_of: dict[int, list[int]] = {}
        self.processes: list[Process] = []
        self.servers: list[ServerProcess] = []
        self.clients: list[StatusClient] = []
        self.notes: list[str] = []
        self.injected = 0
        # Seconds each server took from its start to answering /readyz.
        self.startup_seconds: list[float] = []
        # The ports where workers serve their /metrics, for those started with one.
        self.metrics_ports: list[int] = []
        self._settings = settings or {}
        self._broker_proxy_wanted = broker_proxy
        self._database_proxy_wanted = database_proxy
        self.broker_proxy: TcpProxy | None = None
        self.database_proxy: TcpProxy | None = None

    # -- set-up and tear-down ---------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _remove_workdir(self) -> None:
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _open(self) -> None:
        self.database_url = self._stack.enter_context(private_postgres_schema())
        migrate(self.database_url)
        database_for_processes = self.database_url
        if self._database_proxy_wanted:
            self.database_proxy = self._stack.enter_context(TcpProxy("127.0.0.1", 5432))
            database_for_processes = (
                make_url(self.database_url)
                .set(port=self.database_proxy.port)
                .render_as_string(hide_password=False)
            )
        self.broker_url = self._broker_url()
        broker_for_processes = self.broker_url
        if self._broker_proxy_wanted:
            target = make_url_port(self.broker_url)
            self.broker_proxy = self._stack.enter_context(TcpProxy("127.0.0.1", target))
            broker_for_processes = replace_port(self.broker_url, self.broker_proxy.port)
        self.environ = self._environ(database_for_processes, broker_for_processes)
        direct = self._environ(self.database_url, self.broker_url)
        self.container, _ = build_container(direct)
        self._stack.callback(close_container, self.container)
        self._stack.callback(self._cleanup_rabbitmq)
        self.database = Database.connect(self.database_url)
        self._stack.callback(self.database.close)
        self.observer = Observer(self.container, self.users)
        self._stack.callback(self.observer.close)
        self._stack.callback(self._stop_everything)

    def _broker_url(self) -> str:
        if self.transport == "rabbitmq":
            return RABBITMQ_URL
        server = PrivateServer(self.transport, self.workdir)
        self._stack.callback(server.close)
        scheme = "nats" if self.transport == "nats" else "redis"
        return f"{scheme}://127.0.0.1:{server.port}" + ("/0" if scheme == "redis" else "")

    def _environ(self, database_url: str, broker_url: str) -> dict[str, str]:
        environ = {
            "DATABASE_URL": database_url,
            "TRANSPORT": self.transport,
            "DELIVERY": "outbox",
            "SECRET_KEY": self.secret,
            "STORAGE_DIR": str(self.workdir / "files"),
            "RABBITMQ_EXCHANGE": self.namespace,
            "MAX_DELIVERIES": "10",
            "REDELIVERY_SECONDS": "3",
            "WORKER_LEASE_SECONDS": "4",
            "LOG_FORMAT": "text",
        }
        key = {"rabbitmq": "RABBITMQ_URL", "nats": "NATS_URL", "redis": "REDIS_URL"}
        environ[key[self.transport]] = broker_url
        environ.update(self._settings)
        return environ

    def _stop_everything(self) -> None:
        for client in self.clients:
            client.close()
        # Every process is told at once, then waited for: they finish their jobs side by side.
        running = [p.popen for p in self.processes]
        running += [s.process for s in self.servers if not s.stopped]
        running = [popen for popen in running if popen.poll() is None]
        for popen in running:
            popen.send_signal(signal.SIGTERM)
        for popen in running:
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)
        for server in self.servers:
            server.stopped = True

    def _cleanup_rabbitmq(self) -> None:
        if self.transport != "rabbitmq":
            return
        import pika

        from domain.events import WORK_QUEUES

        with contextlib.suppress(Exception):
            connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
            channel = connection.channel()
            for name in WORK_QUEUES:
                for queue in (f"{self.namespace}.{name}", f"{self.namespace}.{name}.dead"):
                    with contextlib.suppress(Exception):
                        channel.queue_delete(queue)
            for exchange in (self.namespace, f"{self.namespace}.dlx"):
                with contextlib.suppress(Exception):
                    channel.exchange_delete(exchange)
            connection.close()

    # -- processes --------------------------------------------------------------------------

    def start(self, *command: str, name: str | None = None) -> Process:
        """``insighthub COMMAND…`` as a subprocess of this deployment."""
        label = name or "-".join(command)
        log_path = self.workdir / f"{label}-{len(self.processes)}.log"
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                [sys.executable, "-m", "entrypoints.cli", *command],
                env=clean_environ(self.environ),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        process = Process(label, popen, log_path)
        self.processes.append(process)
        return process

    def worker(self, *, metrics_port: int | None = None) -> Process:
        """``insighthub worker all``; with ``metrics_port`` it serves its ``/metrics`` there."""
        metrics: tuple[str, ...] = ()
        if metrics_port is not None:
            metrics = ("--metrics-port", str(metrics_port))
            self.metrics_ports.append(metrics_port)
        timeout = str(STARTUP_SECONDS)
        return self.start("worker", "all", "--startup-timeout", timeout, *metrics, name="worker")

    def relay(self) -> Process:
        return self.start("relay", "--startup-timeout", str(STARTUP_SECONDS), name="relay")

    def server(self, *args: str, port: int | None = None) -> ServerProcess:
        """``insighthub serve`` on ``port`` (else a free one), once it answers ``/readyz``."""
        port = port or free_port()
        log_path = self.workdir / f"server-{port}-{len(self.servers)}.log"
        settings = {"MAX_UPLOAD_BYTES": str(TEST_UPLOAD_LIMIT), **self.environ}
        command = [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port), *args]
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                command, env=clean_environ(settings), stdout=log_file, stderr=subprocess.STDOUT
            )
        server = ServerProcess(port=port, secret=self.secret, process=popen, log_path=log_path)
        self.servers.append(server)
        started = time.monotonic()
        self.wait_for(partial(_answers_ready, server), STARTUP_SECONDS, f"server {port} ready")
        self.startup_seconds.append(time.monotonic() - started)
        return server

    def dead(self) -> list[str]:
        """The workers, relays and servers of this deployment that stopped or stopped answering."""
        gone = [p.name for p in self.processes if p.popen.poll() is not None]
        for server in self.servers:
            if server.stopped:
                continue
            if server.process.poll() is not None:
                gone.append(f"server {server.port} exited")
                continue
            try:
                ready = httpx.get(f"{server.base_url}/readyz", timeout=5.0).status_code == 200
            except httpx.HTTPError:
                ready = False
            if not ready:
                gone.append(f"server {server.port} not ready")
        return gone

    # -- users, clients and work ------------------------------------------------------------

    def new_user(self) -> int:
        user = secrets.randbelow(10**9) + 10**9
        self.users.add(user)
        return user

    def scopes_of(self, user: int) -> list[str]:
        """What the page of ``user`` subscribes to: the workspace list and their workspaces."""
        return ["workspaces", *(f"workspace:{w}" for w in self.workspaces_of.get(user, []))]

    def client(
        self, user: int, *servers: ServerProcess, read: bool = True, wait: bool = True
    ) -> StatusClient:
        """A protocol-2 client of ``user`` on ``servers`` (it moves to the next on a drop)."""
        token = servers[0].token(user)
        urls = [f"ws://127.0.0.1:{server.port}/ws" for server in servers]
        client = StatusClient(
            urls,
            token,
            name=f"u{user}-{len(self.clients)}",
            read=read,
            scopes=self.scopes_of(user),
        )
        self.clients.append(client.start())
        if wait and not client.connected.wait(20):
            raise AssertionError(f"client of user {user} did not connect: {client.errors}")
        return client

    def clients_of(self, user: int) -> list[StatusClient]:
        return [client for client in self.clients if client.name.startswith(f"u{user}-")]

    def ready_workspace(self, server: ServerProcess, user: int) -> int:
        with server.client(user) as api:
            created = api.post("/api/workspaces", json={"name": "faults"})
            assert created.status_code == 202, created.text
            workspace_id: int = created.json()["id"]
        self.wait_for(
            lambda: self.db_status("workspace", workspace_id) == "ready", 60, "workspace ready"
        )
        self.workspaces_of.setdefault(user, []).append(workspace_id)
        return workspace_id

    def upload(self, server: ServerProcess, user: int, workspace_id: int, n: int) -> int | None:
        """Upload one document; its id, or ``None`` when the server refused (a note is kept)."""
        try:
            with server.client(user) as api:
                answer = api.post(
                    f"/api/workspaces/{workspace_id}/documents",
                    files={"file": (f"doc-{n}.txt", GOOD_TEXT, "text/plain")},
                )
        except httpx.HTTPError as exc:
            self.notes.append(f"upload {n}: {type(exc).__name__}")
            return None
        if answer.status_code != 202:
            self.notes.append(f"upload refused {answer.status_code}")
            return None
        document_id: int = answer.json()["id"]
        return document_id

    def stream(
        self,
        server: ServerProcess,
        targets: list[tuple[int, int]],
        count: int,
        every: float,
        during: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Upload ``count`` documents round-robin over (user, workspace), one every ``every``."""
        uploaded = []
        for n in range(count):
            user, workspace_id = targets[n % len(targets)]
            document_id = self.upload(server, user, workspace_id, n)
            if document_id is not None:
                uploaded.append(document_id)
            if during is not None:
                during(n)
            time.sleep(every)
        return uploaded

    # -- the truth, and the figures ---------------------------------------------------------

    def db_status(self, kind: str, entity_id: int) -> str | None:
        table, column = (
            (documents, documents.c.processing_status)
            if kind == "document"
            else (workspaces, workspaces.c.status)
        )
        with self.database.session_factory() as session:
            value = session.execute(select(column).where(table.c.id == entity_id)).scalar()
        return None if value is None else str(value)

    def db_view(self, user: int) -> dict[EntityKey, Shown]:
        view: dict[EntityKey, Shown] = {}
        with self.database.session_factory() as session:
            for row in session.execute(
                select(documents.c.id, documents.c.version, documents.c.processing_status).where(
                    documents.c.user_id == user
                )
            ):
                view[("document", row.id)] = (row.version, row.processing_status)
            for row in session.execute(
                select(workspaces.c.id, workspaces.c.version, workspaces.c.status).where(
                    workspaces.c.user_id == user
                )
            ):
                view[("workspace", row.id)] = (row.version, row.status)
        return view

    def unsent(self) -> int:
        with self.database.session_factory() as session:
            count: int = session.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
        return count

    @contextlib.contextmanager
    def outbox_marks_held(self) -> Iterator[Callable[[], int]]:
        """While open, relays claim and publish but their mark-sent waits: this holds a SHARE
        lock on the outbox, which ``FOR UPDATE`` claims pass and ``UPDATE`` waits for.

        Yields a call that ends the database sessions of the marks waiting on this lock (those
        of relays killed meanwhile, whose pipelined COMMIT would otherwise still run), and
        says how many it ended.
        """
        with self.database.session_factory() as session:
            session.execute(text("LOCK TABLE outbox IN SHARE MODE"))

            def end_waiting_marks() -> int:
                waiting = (
                    session.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity "
                            "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                        )
                    )
                    .scalars()
                    .all()
                )
                for pid in waiting:
                    session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                # Gone before the lock is let go: a session still there could yet commit.
                self.wait_for(
                    lambda: not _still_there(session, waiting), 10, "the waiting marks to end"
                )
                return len(waiting)

            yield end_waiting_marks
            session.rollback()

    def unsettled(self) -> int:
        """Documents and workspaces of this deployment's users not yet in a final state."""
        if not self.users:
            return 0
        with self.database.session_factory() as session:
            documents_open = session.execute(
                select(func.count())
                .select_from(documents)
                .where(
                    documents.c.user_id.in_(self.users),
                    documents.c.processing_status.not_in(TERMINAL),
                )
            ).scalar_one()
            workspaces_open = session.execute(
                select(func.count())
                .select_from(workspaces)
                .where(workspaces.c.user_id.in_(self.users), workspaces.c.status.not_in(TERMINAL))
            ).scalar_one()
        return int(documents_open) + int(workspaces_open)

    def converged(self) -> bool:
        """Nothing left to do or to send, and every client shows exactly the database."""
        if self.unsettled() or self.unsent():
            return False
        for user in self.users:
            truth = self.db_view(user)
            if not all(client.shows(truth) for client in self.clients_of(user)):
                return False
        return True

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.keep_workdir = True
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what} (logs in {self.workdir})"
                )
            time.sleep(0.1)

    def wait_converged(self, timeout: float = CONVERGE_SECONDS) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.converged():
                # Settled and shown; let in-flight duplicates arrive before counting.
                time.sleep(0.5)
                return self.converged()
            time.sleep(0.2)
        self.notes.append(f"not converged: unsettled={self.unsettled()} unsent={self.unsent()}")
        for user in self.users:
            truth = self.db_view(user)
            stuck = [
                f"{k[0]} {k[1]} {v[1]} v{v[0]}" for k, v in truth.items() if v[1] not in TERMINAL
            ]
            if stuck:
                self.notes.append("unsettled: " + ", ".join(stuck))
            for client in self.clients_of(user):
                if not client.shows(truth):
                    expected = client.expected_of(truth)
                    wrong = {k: v for k, v in client.view.items() if expected.get(k) != v}
                    missing = sorted(set(expected) - set(client.view))[:5]
                    self.notes.append(f"client {client.name} differs: {wrong}, lacks {missing}")
        self.keep_workdir = True
        self.notes.append(f"logs kept in {self.workdir}")
        return False

    def committed_versions(self) -> set[tuple[str, int, int]]:
        """Every (entity, version) the database committed for this deployment's users."""
        committed: set[tuple[str, int, int]] = set()
        for user in self.users:
            for (kind, entity_id), (version, _) in self.db_view(user).items():
                committed.update((kind, entity_id, v) for v in range(1, version + 1))
        return committed

    def answer_bytes(self, server: ServerProcess, user: int, cursor: str | None = None) -> int:
        """Bytes of the answers a socket of ``user`` gets for its scopes, after ``cursor``."""
        probe = StatusClient(
            [f"ws://127.0.0.1:{server.port}/ws"],
            server.token(user),
            name=f"probe-{user}",
            scopes=self.scopes_of(user),
        )
        probe.cursor = cursor
        probe.start()
        try:
            if not probe.connected.wait(30):
                raise AssertionError(f"probe of user {user} was not answered: {probe.errors}")
            return probe.links[0].answer_bytes
        finally:
            probe.close()

    def reconnections(self) -> list[tuple[int, Link]]:
        """Every (user, link) of a client's reconnection, in the order they were opened."""
        found = [
            (user, link)
            for user in self.users
            for client in self.clients_of(user)
            for link in client.links[1:]
            if link.modes  # a link dropped before any answer was not a resume refused
        ]
        return sorted(found, key=lambda pair: pair[1].opened_at)

    def measure_resume(self, figures: Figures, server: ServerProcess) -> Figures:
        """Fill in how the reconnections were answered, and what a snapshot would have cost."""
        reconnections = self.reconnections()
        snapshot = {user: self.answer_bytes(server, user) for user, _ in reconnections}
        figures.reconnects = len(reconnections)
        figures.resumed = sum(1 for _, link in reconnections if link.resumed)
        figures.reconnect_bytes = sum(link.answer_bytes for _, link in reconnections)
        figures.snapshot_bytes = sum(snapshot[user] for user, _ in reconnections)
        refused = Counter(
            f"{mode} ({link.reasons.get(scope)})"
            for _, link in reconnections
            for scope, mode in link.modes.items()
            if mode != "resumed"
        )
        figures.notes += [f"{n} answers {what}" for what, n in refused.items()]
        return figures

    def figures(
        self,
        scenario: str,
        started: float,
        converged: bool,
        *,
        before: set[tuple[str, int, int]] | None = None,
    ) -> Figures:
        """The row of the scenario; versions in ``before`` (loaded, not changed) are left out."""
        received = self.observer.events()
        seen = Counter((*entity_key(event), event.version) for event in received)
        committed = self.committed_versions() - (before or set())
        lost = len(committed - set(seen))
        broker_duplicates = sum(count - 1 for count in seen.values())
        return Figures(
            scenario=scenario,
            transport=self.transport,
            committed=len(committed),
            published=len(set(seen) & committed),
            delivered=sum(client.deltas_received for client in self.clients),
            lost=lost,
            duplicates=broker_duplicates + sum(client.duplicates for client in self.clients),
            converged=converged,
            seconds=time.monotonic() - started,
            notes=summarise(self.notes),
        )

    def logs(self) -> str:
        parts = [f"== {p.name}\n{p.log()[-3000:]}" for p in self.processes]
        parts += [f"== server {s.port}\n{s.log()[-3000:]}" for s in self.servers]
        return "\n".join(parts)


def _still_there(session: Session, pids: Sequence[int]) -> int:
    """How many of the backends ``pids`` are still there."""
    # Within a transaction the activity view is a snapshot taken once: drop it to look again.
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    count: int = session.execute(
        text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": list(pids)}
    ).scalar_one()
    return count


def _answers_ready(server: ServerProcess) -> bool:
    """Whether ``server`` answers ``/readyz`` with 200; a server that exited fails at once."""
    if server.process.poll() is not None:
        raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
    try:
        return httpx.get(f"{server.base_url}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def summarise(notes: list[str]) -> list[str]:
    counted = Counter(notes)
    return [note if n == 1 else f"{note} ×{n}" for note, n in counted.items()]


def make_url_port(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"no port in {url}")
    return port


def replace_port(url: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))
