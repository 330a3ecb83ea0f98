"""Real ``insighthub`` processes for end-to-end tests, and the private places they work in.

A test deployment is a private PostgreSQL schema, a private broker namespace (a RabbitMQ
exchange, or a NATS / Redis namespace, of its own, removed afterwards) and a storage
directory. Worker processes are started against it with ``sys.executable -m entrypoints.cli``
and can be stopped politely (SIGTERM) or killed outright (SIGKILL).

Run as ``python -m tests.support.processes worker …`` this module starts a worker whose
hand-off publisher (replaced through ``bootstrap``'s overrides) kills the process right before
it publishes: the worker dies after recording a stage's result and before handing the document
on, at a point a test cannot hit from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import nats
import pika
import redis
from nats.js.errors import NotFoundError
from pika.exceptions import AMQPError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from adapters.container import Container, build_container, close_container
from adapters.settings import ENVIRONMENT_VARIABLES
from adapters.sql.database import migrate
from domain.entities import Document, RagConfig, Workspace
from domain.events import (
    WORK_QUEUES,
    DocumentStatusUpdated,
    Event,
    StatusEvent,
    WorkspaceCreated,
)
from domain.ports import MessagePublisher
from domain.result import Ok
from domain.status import DocumentProcessingStatus, WorkspaceStatus

T = TypeVar("T")

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Variables a developer's shell may set that must not leak into a test process's configuration.
CONFIG_VARIABLES = ENVIRONMENT_VARIABLES
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Set in a worker started through this module: kill the process before publishing a hand-off.
DIE_BEFORE_HAND_OFF = "INSIGHTHUB_TEST_DIE_BEFORE_HAND_OFF"


def clean_environ(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any InsightHub setting, plus ``overrides``."""
    environ = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    environ.pop(DIE_BEFORE_HAND_OFF, None)
    environ.update(overrides)
    return environ


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """The first truthy value of ``predicate()``; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


@dataclass
class InsightHubProcess:
    """One running ``insighthub`` command, its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean anything up."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then its exit code; SIGKILL (and ``AssertionError``) past ``timeout``."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} ignored SIGTERM for {timeout}s:\n{self.log()}"
            ) from None

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} still running after {timeout}s:\n{self.log()}"
            ) from None


@dataclass
class Processes:
    """Starts ``insighthub`` commands with one environment and stops all of them at the end."""

    environ: dict[str, str]
    log_dir: Path
    started: list[InsightHubProcess] = field(default_factory=list)

    def start(
        self,
        *args: str,
        environ: Mapping[str, str] | None = None,
        module: str = "entrypoints.cli",
    ) -> InsightHubProcess:
        name = f"{'-'.join(args[:2])}-{len(self.started)}"
        log_path = self.log_dir / f"{name}.log"
        command = [sys.executable, "-m", module, *args]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                # From the project's root, so that ``-m tests.support.processes`` is found too.
                cwd=PROJECT_ROOT,
                env=clean_environ({**self.environ, **(environ or {})}),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        started = InsightHubProcess(name, process, log_path)
        self.started.append(started)
        return started

    def worker(
        self, kind: str, *args: str, environ: Mapping[str, str] | None = None
    ) -> InsightHubProcess:
        """Start ``insighthub worker KIND`` and wait until it says it has started."""
        started = self.start("worker", kind, *args, environ=environ)
        wait_until(
            lambda: "worker started" in started.log() or not started.running,
            timeout=30,
            what=f"start of {started.name}",
        )
        assert started.running, started.log()
        return started

    def workers(
        self, *kinds: str, environ: Mapping[str, str] | None = None
    ) -> list[InsightHubProcess]:
        """Start one worker of each kind at once, and wait until every one has started."""
        started = [self.start("worker", kind, environ=environ) for kind in kinds]
        for process in started:
            wait_until(
                lambda p=process: "worker started" in p.log() or not p.running,  # type: ignore[misc]
                timeout=30,
                what=f"start of {process.name}",
            )
            assert process.running, process.log()
        return started

    def dying_worker(
        self, kind: str, *args: str, environ: Mapping[str, str] | None = None
    ) -> InsightHubProcess:
        """A worker that kills itself right before publishing its first hand-off."""
        started = self.start(
            "worker",
            kind,
            *args,
            environ={**(environ or {}), DIE_BEFORE_HAND_OFF: "1"},
            module="tests.support.processes",
        )
        wait_until(
            lambda: "worker started" in started.log() or not started.running,
            timeout=30,
            what=f"start of {started.name}",
        )
        return started

    def stop_all(self) -> None:
        for started in self.started:
            if started.running:
                with contextlib.suppress(AssertionError):
                    started.terminate(timeout=20)
        self.started.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in self.started)


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """The URL of a new PostgreSQL schema migrated to head; the schema is dropped on exit."""
    schema = f"w_{uuid.uuid4().hex[:20]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    try:
        migrate(rendered)
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[dict[str, str]]:
    """Settings for a RabbitMQ exchange of its own; its exchanges and queues go on exit."""
    exchange = f"workers-{uuid.uuid4().hex[:12]}"
    try:
        yield {"TRANSPORT": "rabbitmq", "RABBITMQ_URL": RABBITMQ_URL, "RABBITMQ_EXCHANGE": exchange}
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        try:
            for name in WORK_QUEUES:
                for queue in (f"{exchange}.{name}", f"{exchange}.{name}.dead"):
                    with contextlib.suppress(AMQPError):
                        connection.channel().queue_delete(queue)
            for name in (exchange, f"{exchange}.dlx"):
                with contextlib.suppress(AMQPError):
                    connection.channel().exchange_delete(name)
        finally:
            connection.close()


@contextlib.contextmanager
def private_nats() -> Iterator[dict[str, str]]:
    """Settings for a NATS namespace of its own; its JetStream streams are deleted on exit."""
    namespace = f"w{uuid.uuid4().hex[:12]}"
    try:
        yield {"TRANSPORT": "nats", "NATS_URL": NATS_URL, "BROKER_NAMESPACE": namespace}
    finally:
        asyncio.run(_delete_nats_streams(namespace))


async def _delete_nats_streams(namespace: str) -> None:
    client = await nats.connect(NATS_URL)
    try:
        jetstream = client.jetstream()
        for stream in (f"{namespace.upper()}_WORK", f"{namespace.upper()}_DEAD"):
            with contextlib.suppress(NotFoundError):
                await jetstream.delete_stream(stream)
    finally:
        await client.close()


@contextlib.contextmanager
def private_redis() -> Iterator[dict[str, str]]:
    """Settings for a Redis key prefix of its own; its keys are deleted on exit."""
    namespace = f"w{uuid.uuid4().hex[:12]}"
    try:
        yield {"TRANSPORT": "redis", "REDIS_URL": REDIS_URL, "BROKER_NAMESPACE": namespace}
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{namespace}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextlib.contextmanager
def private_transport(transport: str) -> Iterator[dict[str, str]]:
    places: dict[str, Callable[[], contextlib.AbstractContextManager[dict[str, str]]]] = {
        "rabbitmq": private_rabbitmq,
        "nats": private_nats,
        "redis": private_redis,
    }
    with places[transport]() as settings:
        yield settings


class StatusLog:
    """Every status event heard on a subscription, for checks of versions and step lists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[StatusEvent] = []

    def __call__(self, event: StatusEvent) -> None:
        with self._lock:
            self.events.append(event)

    def for_document(self, document_id: int) -> list[DocumentStatusUpdated]:
        with self._lock:
            return [
                e
                for e in self.events
                if isinstance(e, DocumentStatusUpdated) and e.document_id == document_id
            ]


@dataclass
class Deployment:
    """One private deployment: what its processes share, and a container to act on it.

    The test itself plays the part of the server: it creates workspaces and uploads documents
    through the application's use cases, and reads the outcome from the stores.
    """

    environ: dict[str, str]
    container: Container
    processes: Processes

    def ready_workspace(self, user_id: int, config: RagConfig | None = None) -> Workspace:
        """A ready workspace; ``config`` becomes the owner's defaults before it is created."""
        if config is not None:
            self.container.rag_configs().set_defaults(user_id, config)
        created = self.container.workspaces().create(user_id=user_id, name=f"ws-{user_id}")
        assert isinstance(created, Ok), created
        workspace = created.value
        # Provisioned here rather than by a worker: the request a provisioning worker would
        # get later finds the workspace settled and does nothing.
        self.container.provision_workspace()(
            WorkspaceCreated(
                workspace_id=workspace.id,
                user_id=user_id,
                name=workspace.name,
                version=workspace.version,
            )
        )
        ready = self.container.repository().get_workspace(workspace.id)
        assert ready is not None
        assert ready.status is WorkspaceStatus.READY, ready
        return ready

    def upload(self, workspace: Workspace, filename: str, data: bytes) -> Document:
        uploaded = self.container.documents().upload(
            user_id=workspace.user_id,
            workspace_id=workspace.id,
            filename=filename,
            content=[data],
        )
        assert isinstance(uploaded, Ok), uploaded
        return uploaded.value

    def document(self, document_id: int) -> Document:
        found = self.container.repository().get_document(document_id)
        assert found is not None
        return found

    def chunk_rows(self, document_id: int) -> int:
        return self.container.chunk_index().count(document_id)

    def graph_rows(self, document_id: int) -> tuple[int, int]:
        return self.container.graph_store().counts(document_id)

    def settled(self, document_ids: Sequence[int], *, timeout: float) -> list[Document]:
        """Wait until every document is ready or failed; them, in the order asked."""

        def all_settled() -> list[Document] | None:
            found = [self.document(i) for i in document_ids]
            terminal = (DocumentProcessingStatus.READY, DocumentProcessingStatus.FAILED)
            return found if all(d.processing_status in terminal for d in found) else None

        try:
            return wait_until(all_settled, timeout=timeout, interval=0.2, what="settled documents")
        except AssertionError:
            states = {i: self.document(i).processing_status.value for i in document_ids}
            raise AssertionError(f"not settled: {states}\n{self.processes.logs()}") from None

    def wait_for(
        self, document_id: int, check: Callable[[Document], bool], *, timeout: float, what: str
    ) -> Document:
        """The document once ``check`` holds; ``AssertionError`` (with logs) if it never does."""

        def checked() -> Document | None:
            document = self.document(document_id)
            return document if check(document) else None

        try:
            return wait_until(checked, timeout=timeout, interval=0.02, what=what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {self.document(document_id)}\n{self.processes.logs()}"
            ) from None

    def listen(self) -> StatusLog:
        """A status subscription from now on, closed with the deployment."""
        log = StatusLog()
        self.container.broker().subscribe_status(log)
        return log


@contextlib.contextmanager
def deployment(transport: str, log_dir: Path, **settings: str) -> Iterator[Deployment]:
    """A private deployment on PostgreSQL and ``transport``; every process is stopped on exit."""
    with private_postgres() as database_url, private_transport(transport) as broker:
        storage = log_dir / "files"
        environ = {
            "DATABASE_URL": database_url,
            "STORAGE_DIR": str(storage),
            # Long enough that a busy machine never loses a lease by accident; the tests that
            # kill workers shorten it for the processes they start.
            "WORKER_LEASE_SECONDS": "10",
            "REDELIVERY_SECONDS": "2",
            "MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
            **broker,
            **settings,
        }
        container, _ = build_container(environ)
        processes = Processes(environ, log_dir)
        try:
            yield Deployment(environ, container, processes)
        finally:
            processes.stop_all()
            close_container(container)


class HandOffKiller(MessagePublisher):
    """Kills its own process when asked to publish: the death between a write and a hand-off."""

    def publish(self, event: Event) -> None:
        sys.stderr.write(f"dying before handing on {event.routing_key}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        threading.Event().wait()  # SIGKILL is asynchronous; never go on to publish


def _run_dying_worker(argv: Sequence[str]) -> int:
    from entrypoints import cli

    # Only the stage hand-off goes through the killer; status events still go out.
    return cli.main(argv, overrides={"hand_off_publisher": HandOffKiller()})


if __name__ == "__main__":
    sys.exit(_run_dying_worker(sys.argv[1:]))
