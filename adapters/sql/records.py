"""The SQL schema as typed SQLAlchemy records, and their conversion to domain entities.

The records are the database's shape only; the domain's frozen dataclasses never see them.
Every schema change here needs a migration under ``migrations/versions`` (``alembic check``
in the tests compares the two).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    update,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from domain.entities import Document, RagConfig, Workspace
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus

# Deterministic constraint names: migrations can name what they later drop, on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Record(DeclarativeBase):
    """Base of every mapped record."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamp() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False)


class UserRecord(Record):
    """A user, known only by the id their token carries."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = _timestamp()


class InstallationRecord(Record):
    """This database's identity and its change cursor: one row, written by the migration.

    ``epoch`` is drawn at random once, so a reader can tell a position of this database from
    one of another (or of a database recreated from scratch). ``last_position`` is the last
    position handed out; every status change and every creation takes the next one in the
    same statement, and its row lock, held until commit, makes commit order position order.
    """

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[str] = mapped_column(String(64), nullable=False)
    last_position: Mapped[int] = mapped_column(BigInteger, nullable=False)


# The one row of ``installation``.
INSTALLATION_ID = 1


def _take_position(context: DefaultExecutionContext) -> int:
    """The next cursor position, for a row inserted without one (a record added via the ORM)."""
    table = cast(Table, InstallationRecord.__table__)
    taken: int = context.connection.execute(
        update(table)
        .where(table.c.id == INSTALLATION_ID)
        .values(last_position=table.c.last_position + 1)
        .returning(table.c.last_position)
    ).scalar_one()
    return taken


def _position() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, default=_take_position)


class WorkspaceRecord(Record):
    __tablename__ = "workspaces"
    __table_args__ = (Index("ix_workspaces_user_id_position", "user_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=WorkspaceStatus.PROVISIONING.value, index=True
    )
    status_message: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    position: Mapped[int] = _position()
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()


class DocumentRecord(Record):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_user_id_position", "user_id", "position"),
        Index("ix_documents_workspace_id_position", "workspace_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(512), nullable=False)
    processing_status: Mapped[str] = mapped_column(
        String(20),
        nullable=False,
        server_default=DocumentProcessingStatus.PENDING.value,
        index=True,
    )
    processing_error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    details: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSON, nullable=False, server_default=text("'{}'")
    )
    progress: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, server_default=text("'[]'")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    position: Mapped[int] = _position()
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()


class _RagSettings:
    chunk_size: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_overlap: Mapped[int] = mapped_column(Integer, nullable=False)
    embedding_model: Mapped[str] = mapped_column(String(200), nullable=False)
    graph_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()


class RagConfigRecord(_RagSettings, Record):
    """A workspace's processing settings."""

    __tablename__ = "rag_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, unique=True
    )


class DefaultRagConfigRecord(_RagSettings, Record):
    """The settings a user's new workspaces start with."""

    __tablename__ = "default_rag_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
    )


class ChunkRecord(Record):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    vector: Mapped[list[float]] = mapped_column(JSON, nullable=False)


class OutboxRecord(Record):
    """A status event written with the change it announces, waiting for the relay."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_sent_at_id", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    routing_key: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    entity_type: Mapped[str] = mapped_column(String(20), nullable=False)
    entity_id: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _timestamp()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StatusHistoryRecord(Record):
    """One status change (or creation) of a document or workspace, written in its transaction.

    The status it came from is not stored: it is the previous entry's ``to_status``.
    """

    __tablename__ = "status_history"
    __table_args__ = (
        Index(
            "ix_status_history_entity_type_entity_id_position",
            "entity_type",
            "entity_id",
            "position",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(20), nullable=False)
    entity_id: Mapped[int] = mapped_column(Integer, nullable=False)
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    actor: Mapped[str | None] = mapped_column(String(200))
    step: Mapped[str | None] = mapped_column(String(100))
    step_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = _timestamp()


installation = cast(Table, InstallationRecord.__table__)
users = cast(Table, UserRecord.__table__)
workspaces = cast(Table, WorkspaceRecord.__table__)
documents = cast(Table, DocumentRecord.__table__)
rag_configs = cast(Table, RagConfigRecord.__table__)
default_rag_configs = cast(Table, DefaultRagConfigRecord.__table__)
chunks = cast(Table, ChunkRecord.__table__)
outbox = cast(Table, OutboxRecord.__table__)
status_history = cast(Table, StatusHistoryRecord.__table__)


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (SQLite hands timestamps back without a zone)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_document(row: Mapping[Any, Any]) -> Document:
    """A document entity from a ``documents`` row keyed by column name."""
    return Document(
        id=row["id"],
        user_id=row["user_id"],
        workspace_id=row["workspace_id"],
        filename=row["filename"],
        storage_key=row["storage_key"],
        processing_status=DocumentProcessingStatus(row["processing_status"]),
        processing_error=row["processing_error"],
        chunk_count=row["chunk_count"],
        metadata=dict(row["metadata"] or {}),
        progress=Progress.from_json(row["progress"]),
        version=row["version"],
        position=row["position"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


def to_workspace(row: Mapping[Any, Any]) -> Workspace:
    """A workspace entity from a ``workspaces`` row keyed by column name."""
    return Workspace(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        status=WorkspaceStatus(row["status"]),
        status_message=row["status_message"],
        version=row["version"],
        position=row["position"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


def to_rag_config(row: Mapping[Any, Any]) -> RagConfig:
    return RagConfig(
        chunk_size=row["chunk_size"],
        chunk_overlap=row["chunk_overlap"],
        embedding_model=row["embedding_model"],
        graph_enabled=bool(row["graph_enabled"]),
    )


def rag_config_values(config: RagConfig) -> dict[str, Any]:
    return {
        "chunk_size": config.chunk_size,
        "chunk_overlap": config.chunk_overlap,
        "embedding_model": config.embedding_model,
        "graph_enabled": config.graph_enabled,
    }


class GraphNodeRecord(Record):
    """An entity found in a document."""

    __tablename__ = "graph_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    label: Mapped[str] = mapped_column(Text, nullable=False)
    mentions: Mapped[int] = mapped_column(Integer, nullable=False)


class GraphEdgeRecord(Record):
    """Two entities of a document that share chunks."""

    __tablename__ = "graph_edges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    source: Mapped[str] = mapped_column(Text, nullable=False)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    weight: Mapped[int] = mapped_column(Integer, nullable=False)


class DocumentLeaseRecord(Record):
    """A worker's claim on a document, until ``expires_at`` (seconds since the epoch, DB clock)."""

    __tablename__ = "document_leases"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)


class UserUsageRecord(Record):
    """What a user has stored (and is storing), counted against their quotas."""

    __tablename__ = "user_usage"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    documents: Mapped[int] = mapped_column(Integer, nullable=False)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)


graph_nodes = cast(Table, GraphNodeRecord.__table__)
graph_edges = cast(Table, GraphEdgeRecord.__table__)
document_leases = cast(Table, DocumentLeaseRecord.__table__)
user_usage = cast(Table, UserUsageRecord.__table__)


class WorkerHeartbeatRecord(Record):
    """A worker process's latest report; ``seen_at`` is the database's clock (seconds)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    stage: Mapped[str] = mapped_column(String(200), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    current_documents: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    processed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    failed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seen_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)


class OperatorActionRecord(Record):
    """One operator action: who did what to which target, and the outcome."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = _timestamp()
    actor: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)


worker_heartbeats = cast(Table, WorkerHeartbeatRecord.__table__)
operator_actions = cast(Table, OperatorActionRecord.__table__)
