"""The wiring of the composition root: configuration in, adapters and services out.

Entrypoints never see this container: ``adapters.bootstrap.bootstrap`` wraps it in the typed
``Services`` facade. Every adapter is a lazy singleton behind a ``providers.Selector``, so only
the branch the configuration picks is ever imported, built or connected; ``close_container``
closes exactly what was opened.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from dependency_injector import containers, providers

from adapters.files.local import LocalFileStorage
from adapters.memory.broker import InMemoryBroker
from adapters.memory.chunks import InMemoryChunkIndex
from adapters.memory.graph import InMemoryGraphStore
from adapters.memory.leases import InMemoryDocumentLeases
from adapters.memory.operations import (
    InMemoryOperatorLog,
    InMemoryStuckWork,
    InMemoryWorkerRegistry,
)
from adapters.memory.outbox import InMemoryOutbox
from adapters.memory.rag_configs import InMemoryRagConfigs
from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.storage import InMemoryFileStorage
from adapters.memory.usage import InMemoryUserUsage
from adapters.messaging import EventCodec
from adapters.pacing import paced
from adapters.processing.embedding import FeatureHashingEmbedder
from adapters.processing.sandboxed_extraction import ExtractionLimits, SandboxedTextExtractor
from adapters.settings import Settings
from application.deadlines import DeadlineGuardedLeases, DeadlinePolicy, StepDeadlines
from application.documents import Documents
from application.eta import EtaEstimator
from application.handlers import ProvisionWorkspace, RunStage
from application.jobs import JobRunner
from application.metrics import Metrics
from application.operations import OperatorConsole
from application.pipeline import STAGES_BY_NAME, DocumentSteps, Planner
from application.quotas import Quotas
from application.recovery import LeaseSweeper
from application.relay import OutboxRelay
from application.status_service import StatusService
from application.tokens import TokenIssuer, TokenVerifier
from application.tracing import NoTracer, Tracer
from application.workspaces import Workspaces
from domain.entities import RagConfig
from domain.events import WORK_QUEUES
from domain.ports import (
    ChangeFeed,
    DocumentLeases,
    FileStorage,
    MessageBroker,
    MessagePublisher,
    OperatorLog,
    RagConfigs,
    StatusRepository,
    StepTimings,
    StuckWork,
    WorkerRegistry,
)
from domain.ports.outbox import Outbox
from domain.ports.processing import ChunkIndex, GraphStore
from domain.ports.usage import UserUsage
from domain.signing import EventSigner, VersionGuard

if TYPE_CHECKING:
    from adapters.tracing.instrumentation import LibraryInstrumentation


class _Closable(Protocol):
    def close(self) -> None: ...


Opened = dict[str, _Closable]
C = TypeVar("C", bound=_Closable)
T = TypeVar("T")


def _opened(opened: Opened, name: str, build: Callable[[], C]) -> C:
    thing = build()
    opened[name] = thing
    return thing


def _event_codec(
    key: str | None, previous: str | None, max_version: int, max_jump: int, metrics: Metrics
) -> EventCodec:
    return EventCodec(
        EventSigner(key, previous) if key else None,
        VersionGuard(max_version=max_version, max_jump=max_jump),
        on_rejected=metrics.event_refused,
    )


def _memory_broker(opened: Opened, max_deliveries: int, codec: EventCodec) -> MessageBroker:
    return _opened(
        opened, "broker", lambda: InMemoryBroker(max_deliveries=max_deliveries, codec=codec)
    )


def _rabbitmq_broker(
    opened: Opened, url: str, exchange: str, max_deliveries: int, codec: EventCodec
) -> MessageBroker:
    from adapters.rabbitmq.broker import RabbitMQBroker

    return _opened(
        opened,
        "broker",
        # One unacknowledged job at a time: RabbitMQ counts every return of a prefetched
        # message as a delivery, so a larger prefetch would spend the attempts of idle ones.
        lambda: RabbitMQBroker(
            url=url, exchange=exchange, max_deliveries=max_deliveries, prefetch=1, codec=codec
        ),
    )


def _nats_broker(
    opened: Opened,
    url: str,
    namespace: str,
    max_deliveries: int,
    redelivery_seconds: float,
    codec: EventCodec,
) -> MessageBroker:
    from adapters.nats.broker import NatsBroker

    return _opened(
        opened,
        "broker",
        lambda: NatsBroker(
            url=url,
            namespace=namespace,
            max_deliveries=max_deliveries,
            ack_wait=redelivery_seconds,
            codec=codec,
        ),
    )


def _redis_broker(
    opened: Opened,
    url: str,
    namespace: str,
    max_deliveries: int,
    redelivery_seconds: float,
    codec: EventCodec,
    instrumentation: LibraryInstrumentation | None,
) -> MessageBroker:
    from adapters.redis.broker import RedisBroker

    broker = _opened(
        opened,
        "broker",
        lambda: RedisBroker(
            url=url,
            namespace=namespace,
            max_deliveries=max_deliveries,
            claim_idle_seconds=redelivery_seconds,
            codec=codec,
        ),
    )
    if instrumentation is not None:
        instrumentation.redis(broker.connection.client)
    return broker


def _sql_database(
    opened: Opened, url: str, delivery: str, instrumentation: LibraryInstrumentation | None
) -> Any:
    from adapters.sql.database import Database

    database = _opened(
        opened, "database", lambda: Database.connect(url, outbox=delivery == "outbox")
    )
    if instrumentation is not None:
        instrumentation.engine(database.engine)
    return database


def _sql_repository(database: Any) -> StatusRepository:
    from adapters.sql.repository import SqlStatusRepository

    return SqlStatusRepository(database.session_factory, outbox=database.outbox)


def _memory_feed(repository: StatusRepository) -> ChangeFeed:
    from adapters.memory.feed import InMemoryChangeFeed

    assert isinstance(repository, InMemoryStatusRepository)
    return InMemoryChangeFeed(repository)


def _sql_feed(database: Any, repository: StatusRepository) -> ChangeFeed:
    from adapters.sql.feed import SqlChangeFeed

    return SqlChangeFeed(database.session_factory, epoch=repository.epoch)


def _memory_step_timings(repository: StatusRepository) -> StepTimings:
    from adapters.memory.timings import InMemoryStepTimings

    assert isinstance(repository, InMemoryStatusRepository)
    return InMemoryStepTimings(repository)


def _sql_step_timings(database: Any) -> StepTimings:
    from adapters.sql.timings import SqlStepTimings

    return SqlStepTimings(database.session_factory)


def _sql_rag_configs(database: Any) -> RagConfigs:
    from adapters.sql.rag_configs import SqlRagConfigs

    return SqlRagConfigs(database.session_factory)


def _sql_chunk_index(database: Any) -> ChunkIndex:
    from adapters.sql.chunks import SqlChunkIndex

    return SqlChunkIndex(database.session_factory)


def _sql_graph_store(database: Any) -> GraphStore:
    from adapters.sql.graph import SqlGraphStore

    return SqlGraphStore(database.session_factory)


def _sql_leases(database: Any) -> DocumentLeases:
    from adapters.sql.leases import SqlDocumentLeases

    return SqlDocumentLeases(database.session_factory)


def _sql_usage(database: Any) -> UserUsage:
    from adapters.sql.usage import SqlUserUsage

    return SqlUserUsage(database.session_factory)


def _sql_worker_registry(database: Any) -> WorkerRegistry:
    from adapters.sql.operations import SqlWorkerRegistry

    return SqlWorkerRegistry(database.session_factory)


def _sql_operator_log(database: Any) -> OperatorLog:
    from adapters.sql.operations import SqlOperatorLog

    return SqlOperatorLog(database.session_factory)


def _sql_stuck_work(database: Any) -> StuckWork:
    from adapters.sql.operations import SqlStuckWork

    return SqlStuckWork(database.session_factory)


def _operator_console(
    broker: MessageBroker,
    registry: WorkerRegistry,
    log: OperatorLog,
    stuck: StuckWork,
    heartbeat_seconds: float,
) -> OperatorConsole:
    return OperatorConsole(
        broker.dead_letters(),
        list(WORK_QUEUES),
        registry,
        log,
        stuck,
        heartbeat_seconds=heartbeat_seconds,
        backlogs=broker.backlogs(),
    )


def _sql_outbox(opened: Opened, database: Any) -> Outbox:
    from adapters.sql.outbox import SqlOutbox

    return _opened(opened, "outbox", lambda: SqlOutbox(database))


def _rag_config_lookup(rag_configs: RagConfigs) -> Callable[[int], RagConfig]:
    def rag_config_for(workspace_id: int) -> RagConfig:
        return rag_configs.for_workspace(workspace_id) or RagConfig()

    return rag_config_for


def _as_is(thing: T) -> T:
    return thing


def _token_verifier(config: Mapping[str, Any]) -> TokenVerifier:
    from adapters.auth.jwt_tokens import token_verifier

    return token_verifier(
        Settings(**{name: config[name] for name in Settings.__dataclass_fields__})
    )


def _token_issuer(secret_key: str) -> TokenIssuer:
    from adapters.auth.jwt_tokens import JwtIssuer

    return JwtIssuer(secret_key)


def _prometheus_metrics(max_deliveries: int) -> Metrics:
    from adapters.prometheus.metrics import PrometheusMetrics

    return PrometheusMetrics(max_deliveries=max_deliveries)


def _tracer(
    opened: Opened,
    exporters: tuple[str, ...],
    service_name: str,
    base_endpoint: str | None,
    traces_endpoint: str | None,
) -> Tracer:
    """The no-op tracer unless an exporter (or an OTLP endpoint) is configured."""
    names = tuple(name for name in exporters if name != "none")
    if not exporters and (base_endpoint or traces_endpoint):
        names = ("otlp",)
    if not names:
        return NoTracer()
    # Imported only when tracing is on: with it off, the SDK is never loaded.
    from adapters.tracing.opentelemetry import opentelemetry_tracer
    from adapters.tracing.opentelemetry import traces_endpoint as where

    return _opened(
        opened,
        "tracer",
        lambda: opentelemetry_tracer(
            names, service_name=service_name, endpoint=where(base_endpoint, traces_endpoint)
        ),
    )


def _instrumentation(tracer: Tracer) -> LibraryInstrumentation | None:
    """The instrumentation packages on ``tracer``'s spans; none unless it is OpenTelemetry's."""
    if isinstance(tracer, NoTracer):
        return None
    # Imported only when tracing is on, like the SDK.
    from adapters.tracing.instrumentation import LibraryInstrumentation
    from adapters.tracing.opentelemetry import OpenTelemetryTracer

    return LibraryInstrumentation(tracer) if isinstance(tracer, OpenTelemetryTracer) else None


def _worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _stage_handler(
    name: str,
    runner: JobRunner,
    steps: DocumentSteps,
    publisher: MessagePublisher,
    leases: DocumentLeases,
    owner: str,
    lease_seconds: float,
    recoveries_log: OperatorLog,
) -> RunStage:
    return RunStage(
        STAGES_BY_NAME[name],
        runner,
        steps.for_stage,
        publisher,
        leases,
        owner=owner,
        lease_seconds=lease_seconds,
        recoveries_log=recoveries_log,
    )


class Container(containers.DeclarativeContainer):
    """Wires the application from ``config`` (the validated ``Settings``)."""

    config = providers.Configuration(strict=True)
    opened: providers.Singleton[Opened] = providers.Singleton(dict)
    # One registry per process: the server's /metrics, or a worker's or relay's --metrics-port.
    metrics: providers.Provider[Metrics] = providers.Singleton(
        _prometheus_metrics, config.max_deliveries
    )

    # Signs what this process publishes and refuses untrusted messages it receives.
    event_codec: providers.Provider[EventCodec] = providers.Singleton(
        _event_codec,
        config.event_signing_key,
        config.event_signing_key_previous,
        config.event_max_version,
        config.event_max_version_jump,
        metrics,
    )
    tracer: providers.Provider[Tracer] = providers.Singleton(
        _tracer,
        opened,
        config.otel_traces_exporter,
        config.otel_service_name,
        config.otel_exporter_otlp_endpoint,
        config.otel_exporter_otlp_traces_endpoint,
    )
    # The libraries' own instrumentation (SQLAlchemy, Redis, ASGI); none with tracing off.
    instrumentation: providers.Provider[LibraryInstrumentation | None] = providers.Singleton(
        _instrumentation, tracer
    )
    broker: providers.Provider[MessageBroker] = providers.Selector(
        config.transport,
        memory=providers.Singleton(_memory_broker, opened, config.max_deliveries, event_codec),
        rabbitmq=providers.Singleton(
            _rabbitmq_broker,
            opened,
            config.rabbitmq_url,
            config.rabbitmq_exchange,
            config.max_deliveries,
            event_codec,
        ),
        nats=providers.Singleton(
            _nats_broker,
            opened,
            config.nats_url,
            config.broker_namespace,
            config.max_deliveries,
            config.redelivery_seconds,
            event_codec,
        ),
        redis=providers.Singleton(
            _redis_broker,
            opened,
            config.redis_url,
            config.broker_namespace,
            config.max_deliveries,
            config.redelivery_seconds,
            event_codec,
            instrumentation,
        ),
    )
    publisher = providers.Singleton(broker.provided.publisher.call())

    database = providers.Singleton(
        _sql_database, opened, config.database_url, config.delivery, instrumentation
    )
    memory_outbox = providers.Selector(
        config.delivery,
        direct=providers.Object(None),
        outbox=providers.Singleton(InMemoryOutbox),
    )
    repository: providers.Provider[StatusRepository] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryStatusRepository, outbox=memory_outbox),
        sql=providers.Singleton(_sql_repository, database),
    )
    feed: providers.Provider[ChangeFeed] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(_memory_feed, repository),
        sql=providers.Singleton(_sql_feed, database, repository),
    )
    step_timings: providers.Provider[StepTimings] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(_memory_step_timings, repository),
        sql=providers.Singleton(_sql_step_timings, database),
    )
    eta_estimator = providers.Singleton(EtaEstimator, step_timings)
    storage: providers.Provider[FileStorage] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryFileStorage),
        sql=providers.Singleton(LocalFileStorage, config.storage_dir),
    )
    rag_configs: providers.Provider[RagConfigs] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryRagConfigs),
        sql=providers.Singleton(_sql_rag_configs, database),
    )
    chunk_index: providers.Provider[ChunkIndex] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryChunkIndex),
        sql=providers.Singleton(_sql_chunk_index, database),
    )
    graph_store: providers.Provider[GraphStore] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryGraphStore),
        sql=providers.Singleton(_sql_graph_store, database),
    )
    leases: providers.Provider[DocumentLeases] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryDocumentLeases, repository),
        sql=providers.Singleton(_sql_leases, database),
    )
    worker_registry: providers.Provider[WorkerRegistry] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryWorkerRegistry),
        sql=providers.Singleton(_sql_worker_registry, database),
    )
    operator_log: providers.Provider[OperatorLog] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryOperatorLog),
        sql=providers.Singleton(_sql_operator_log, database),
    )
    stuck_work: providers.Provider[StuckWork] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryStuckWork, repository, leases),
        sql=providers.Singleton(_sql_stuck_work, database),
    )
    operator_console = providers.Singleton(
        _operator_console,
        broker,
        worker_registry,
        operator_log,
        stuck_work,
        config.worker_heartbeat_seconds,
    )
    # With outbox delivery the repository records each status event in the status change's
    # own transaction and the relay publishes it; the service then publishes nothing itself.
    # ``step_delay`` (the demo's) slows the workers' step announcements only, never the API.
    status_publisher = providers.Selector(
        config.delivery,
        direct=providers.Singleton(paced, publisher, config.step_delay),
        outbox=providers.Object(None),
    )
    status_service = providers.Singleton(StatusService, repository, status_publisher)
    outbox: providers.Provider[Outbox] = providers.Selector(
        config.persistence,
        memory=memory_outbox,
        sql=providers.Singleton(_sql_outbox, opened, database),
    )
    relay = providers.Singleton(OutboxRelay, outbox, publisher, metrics=metrics)

    usage: providers.Provider[UserUsage] = providers.Selector(
        config.persistence,
        memory=providers.Singleton(InMemoryUserUsage),
        sql=providers.Singleton(_sql_usage, database),
    )
    quotas = providers.Singleton(
        Quotas,
        usage,
        max_documents=config.quota_documents,
        max_bytes=config.quota_bytes,
        uploads_per_minute=config.uploads_per_minute,
        metrics=metrics,
    )

    workspaces = providers.Singleton(Workspaces, repository, status_service, publisher)
    documents = providers.Singleton(
        Documents,
        repository,
        status_service,
        storage,
        publisher,
        max_upload_bytes=config.max_upload_bytes,
        plan_for=providers.Singleton(Planner, rag_configs),
        quotas=quotas,
    )

    # ``ConfigError`` for an unusable key, on first use: the server builds it at start.
    token_verifier: providers.Provider[TokenVerifier] = providers.Singleton(_token_verifier, config)
    token_issuer: providers.Provider[TokenIssuer] = providers.Singleton(
        _token_issuer, config.secret_key
    )

    worker_identity = providers.Singleton(_worker_identity)
    document_steps = providers.Singleton(
        DocumentSteps,
        storage,
        providers.Singleton(
            SandboxedTextExtractor,
            providers.Singleton(
                ExtractionLimits,
                cpu_seconds=config.extract_cpu_seconds,
                memory_mb=config.extract_memory_mb,
                wall_seconds=config.step_deadline_seconds,
                max_pages=config.extract_max_pages,
                max_chars=config.extract_max_chars,
            ),
        ),
        providers.Singleton(FeatureHashingEmbedder),
        chunk_index,
        graph_store,
        providers.Singleton(_rag_config_lookup, rag_configs),
    )
    step_deadlines = providers.Singleton(
        StepDeadlines,
        providers.Singleton(DeadlinePolicy, default_seconds=config.step_deadline_seconds),
    )
    job_runner = providers.Singleton(
        JobRunner,
        status_service,
        metrics=metrics,
        deadlines=step_deadlines,
        actor=worker_identity,
        tracer=tracer,
        estimator=eta_estimator,
    )
    # A provider of its own, so that an override can replace the stage hand-off alone.
    hand_off_publisher = providers.Callable(_as_is, publisher)
    stage_handler = providers.Factory(
        _stage_handler,
        runner=job_runner,
        steps=document_steps,
        publisher=hand_off_publisher,
        # A step past its deadline loses its lease, so the sweeper can take the document up.
        leases=providers.Singleton(DeadlineGuardedLeases, leases, step_deadlines),
        owner=worker_identity,
        lease_seconds=config.worker_lease_seconds,
        recoveries_log=operator_log,
    )
    provision_workspace = providers.Singleton(
        ProvisionWorkspace, status_service, rag_configs, storage
    )
    lease_sweeper = providers.Singleton(
        LeaseSweeper,
        status_service,
        leases,
        storage,
        publisher,
        owner=worker_identity,
        lease_seconds=config.worker_lease_seconds,
        recoveries_log=operator_log,
    )


def build_container(
    environ: Mapping[str, str] | None = None, *, step_delay: float = 0.0
) -> tuple[Container, Settings]:
    """Read the environment once (``ConfigError`` on a bad value) and wire the container."""
    settings = Settings.from_environ(os.environ if environ is None else environ)
    container = Container()
    container.config.from_dict({**settings.as_dict(), "step_delay": step_delay})
    return container, settings


def close_container(container: Container) -> None:
    """Close every connection the container opened, newest first."""
    opened: Opened = container.opened()
    for thing in reversed(list(opened.values())):
        thing.close()
    opened.clear()
