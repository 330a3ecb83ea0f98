"""The composition root: ``bootstrap()`` reads the configuration and returns ``Services``.

``Services`` is the one object an entrypoint receives: the use cases, the work handlers, the
status service, the broker for work queues and subscriptions, and the lifecycle (``start``,
``close``). Entrypoints never see the container behind it.

Tests and benchmarks change the wiring through ``bootstrap(overrides=...)`` alone: each key
names a provider of ``adapters.container.Container`` and its value is what that provider
yields from then on (a plain object, or a dependency-injector provider)::

    services = bootstrap(environ, overrides={"repository": UnreachableDatabase()})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp

from adapters.container import Container, build_container, close_container
from adapters.prometheus.metrics import PrometheusMetrics
from adapters.settings import Settings
from application.documents import Documents
from application.metrics import Metrics
from application.operations import OperatorConsole
from application.pipeline import STAGES_BY_NAME
from application.recovery import LeaseSweeper
from application.relay import OutboxRelay
from application.status_service import StatusService
from application.tokens import TokenIssuer, TokenVerifier
from application.tracing import Tracer, continuing
from application.worker import WorkHandler
from application.workspaces import Workspaces
from domain.events import WORK_QUEUES
from domain.ports import ChangeFeed, MessageBroker, StatusRepository, WorkerRegistry

Overrides = Mapping[str, object]
NO_OVERRIDES: Overrides = {}

PROVISIONING = "provisioning"
# The queues a worker can take: provisioning, then the pipeline's stages in order.
WORKER_KINDS: tuple[str, ...] = (PROVISIONING, *STAGES_BY_NAME)


def bootstrap(
    environ: Mapping[str, str] | None = None,
    *,
    step_delay: float = 0.0,
    overrides: Overrides = NO_OVERRIDES,
) -> Services:
    """Read ``environ`` (default: the process's) once and wire everything; connects to nothing.

    ``ConfigError`` names the variable of a bad value. ``step_delay`` pauses the workers of
    this process after each processing step they announce (for a watched demo).
    ``overrides`` replaces providers by name; an unknown name is a ``ValueError``.
    """
    container, settings = build_container(environ, step_delay=step_delay)
    for name, replacement in overrides.items():
        provider = container.providers.get(name)
        if provider is None:
            raise ValueError(
                f"no provider {name!r} to override; choose from {sorted(container.providers)}"
            )
        provider.override(replacement)
    return Services(container, settings)


@dataclass(frozen=True)
class Migration:
    """What ``migrate_database`` did: the database (without its password) and its revisions."""

    where: str
    before: str | None
    after: str


class MigrationFailed(Exception):
    """A migration did not apply; the message is the first line of why."""


def migrate_database(database_url: str) -> Migration:
    """Upgrade the schema of ``database_url`` to the latest revision.

    ``ConfigError`` when the database cannot be used as configured (malformed, unreachable),
    ``MigrationFailed`` when a migration does not apply.
    """
    # Imported here so that commands without a database never load SQLAlchemy or Alembic.
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.sql.database import describe, migrate, parse_url

    try:
        before, after = migrate(database_url)
    except (CommandError, SQLAlchemyError) as exc:
        lines = str(exc).strip().splitlines()
        raise MigrationFailed(lines[0] if lines else type(exc).__name__) from exc
    return Migration(describe(parse_url(database_url)), before, after)


class Services:
    """What an entrypoint needs, typed; every part is built on first use, then shared.

    Only the configured store and transport are ever imported or connected. ``start`` builds
    the shared parts at once on the calling thread; ``close`` closes exactly what was opened.
    """

    def __init__(self, container: Container, settings: Settings) -> None:
        self._container = container
        self.settings = settings
        self._lost_events_registered = False
        self._queue_backlogs_registered = False

    @property
    def workspaces(self) -> Workspaces:
        workspaces: Workspaces = self._container.workspaces()
        return workspaces

    @property
    def documents(self) -> Documents:
        documents: Documents = self._container.documents()
        return documents

    @property
    def status_service(self) -> StatusService:
        service: StatusService = self._container.status_service()
        return service

    @property
    def repository(self) -> StatusRepository:
        """The status store, for readiness checks; changes go through the status service."""
        repository: StatusRepository = self._container.repository()
        return repository

    @property
    def feed(self) -> ChangeFeed:
        """What changed in a scope after a cursor, and pages of a scope, for the push paths."""
        feed: ChangeFeed = self._container.feed()
        return feed

    @property
    def broker(self) -> MessageBroker:
        """The configured transport: work queues and status subscriptions."""
        broker: MessageBroker = self._container.broker()
        return broker

    def connect_broker(self) -> None:
        """Connect to the broker and open its publisher; raises what the broker raises."""
        self._container.publisher()

    @property
    def relay(self) -> OutboxRelay:
        relay: OutboxRelay = self._container.relay()
        return relay

    @property
    def lease_sweeper(self) -> LeaseSweeper:
        sweeper: LeaseSweeper = self._container.lease_sweeper()
        return sweeper

    @property
    def operator_console(self) -> OperatorConsole:
        """Dead letters, live workers, stuck work and the operator log, for operators."""
        console: OperatorConsole = self._container.operator_console()
        return console

    @property
    def worker_registry(self) -> WorkerRegistry:
        """Where this process's workers report their heartbeats."""
        registry: WorkerRegistry = self._container.worker_registry()
        return registry

    @property
    def worker_identity(self) -> str:
        """This process's name among workers (host, pid and a random part)."""
        identity: str = self._container.worker_identity()
        return identity

    @property
    def token_verifier(self) -> TokenVerifier:
        """Checks bearer tokens: our own JWTs, and the host application's when configured."""
        verifier: TokenVerifier = self._container.token_verifier()
        return verifier

    @property
    def token_issuer(self) -> TokenIssuer:
        """Issues this installation's own JWTs."""
        issuer: TokenIssuer = self._container.token_issuer()
        return issuer

    @property
    def metrics(self) -> Metrics:
        """Where the job runner, the workers and the relay count what they do."""
        metrics: Metrics = self._container.metrics()
        return metrics

    @property
    def tracer(self) -> Tracer:
        """Opens spans: real ones when an ``OTEL_*`` exporter is configured, else none."""
        tracer: Tracer = self._container.tracer()
        return tracer

    @property
    def http_tracing(self) -> Callable[[ASGIApp], ASGIApp] | None:
        """Wraps an ASGI app in the HTTP server span; ``None`` when tracing is off."""
        instrumentation = self._container.instrumentation()
        return None if instrumentation is None else instrumentation.asgi

    def process_metrics(self) -> PrometheusMetrics:
        """This process's metrics registry, with the counts the status service keeps itself."""
        metrics = self._container.metrics()
        if not isinstance(metrics, PrometheusMetrics):
            raise TypeError(f"metrics are not exposed by {type(metrics).__name__}")
        if not self._lost_events_registered:
            metrics.read_counter(
                "status_events_lost_total",
                "Status events this process failed to publish after every attempt.",
                lambda: self.status_service.lost_events,
            )
            self._lost_events_registered = True
        return metrics

    def expose_queue_backlogs(self) -> PrometheusMetrics:
        """``process_metrics``, plus the depth and oldest request's age of every work queue,
        read from the broker at each scrape (for one process per deployment: the server)."""
        metrics = self.process_metrics()
        if not self._queue_backlogs_registered:
            from adapters.prometheus.queues import QueueBacklogCollector

            metrics.register(QueueBacklogCollector(self.broker.backlogs(), list(WORK_QUEUES)))
            self._queue_backlogs_registered = True
        return metrics

    def handlers_for(self, queue: str) -> dict[str, WorkHandler]:
        """The handler of every routing key bound to ``queue`` (one of ``WORKER_KINDS``)."""
        if queue == PROVISIONING:
            provision: WorkHandler = self._container.provision_workspace()
            return {"workspace.created": continuing(provision, self.tracer)}
        stage = STAGES_BY_NAME.get(queue)
        if stage is None:
            raise ValueError(f"unknown worker {queue!r}; choose from {', '.join(WORKER_KINDS)}")
        handler: WorkHandler = self._container.stage_handler(name=stage.name)
        return {stage.consumes.routing_key: continuing(handler, self.tracer)}

    def start(self) -> None:
        """Connect the store and the broker and build the shared services, on this thread.

        Raises what the store or the broker raises; calling it again retries what failed.
        """
        for part in ("repository", "status_service", "workspaces", "documents", "feed", "broker"):
            getattr(self._container, part)()

    def close(self) -> None:
        """Close every connection that was opened, newest first."""
        close_container(self._container)
