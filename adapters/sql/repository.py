"""StatusRepository on SQLAlchemy (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any, NamedTuple, TypeVar

import psycopg
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Insert,
    ScalarSelect,
    Select,
    Table,
    Update,
    bindparam,
    cast,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adapters.sql.database import psycopg_connection
from adapters.sql.records import (
    INSTALLATION_ID,
    documents,
    installation,
    outbox,
    status_history,
    to_document,
    to_workspace,
    users,
    utc,
    workspaces,
)
from adapters.sql.sessions import SessionSource, transaction
from application.tracing import current_traceparent
from domain.changes import DocumentStatusChange, StatusChange, WorkspaceStatusChange
from domain.entities import FIRST_VERSION, Document, Workspace
from domain.events import encode, entity_key, status_event_for
from domain.history import HistoryEntity, StatusHistoryEntry, recorded_status
from domain.ports import StatusRepository
from domain.problems import Problem
from domain.progress import Progress
from domain.result import Err, Ok, Result
from domain.status import DocumentProcessingStatus, WorkspaceStatus

E = TypeVar("E", Document, Workspace)

# A failed conditional update is diagnosed by reading the row; if another writer changed it
# in between so that the move has become legal, the update is simply tried again.
_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_user(session: Session, user_id: int, now: datetime) -> None:
    """Create the ``users`` row for a bare user id, unless it exists (tokens carry only ids)."""
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        upsert(users)
        .values(id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )


class SqlStatusRepository(StatusRepository):
    """Documents and workspaces in SQL; each status change is a single conditional UPDATE.

    Built on a ``Session`` (the seed's ``SqlStatusRepository(db)``) it works and commits in
    that session; built on a ``sessionmaker`` every call has its own short session and the
    repository may be shared between threads. With ``outbox=True`` the status event of every
    change (and the creation event of every new entity) is written to the ``outbox`` table in
    the same transaction as the change, for the relay to publish.

    Every change and every creation takes the next position on the database's change cursor
    (see ``_next_position``), so that readers can ask for everything after a position.
    """

    def __init__(self, session_or_factory: SessionSource, *, outbox: bool = False) -> None:
        self._source = session_or_factory
        self._outbox = outbox
        self._epoch: str | None = None

    def epoch(self) -> str:
        if self._epoch is None:
            with transaction(self._source) as session:
                self._epoch = session.execute(
                    select(installation.c.epoch).where(installation.c.id == INSTALLATION_ID)
                ).scalar_one()
        return self._epoch

    def add_workspace(self, *, user_id: int, name: str) -> Workspace:
        now = _now()
        with transaction(self._source) as session:
            ensure_user(session, user_id, now)
            connection = session.connection()
            row = connection.execute(
                insert(workspaces)
                .values(
                    user_id=user_id,
                    name=name,
                    status=WorkspaceStatus.PROVISIONING.value,
                    status_message=None,
                    version=FIRST_VERSION,
                    position=_next_position(connection.dialect.name),
                    created_at=now,
                    updated_at=now,
                )
                .returning(*workspaces.c)
            ).one()
            _took_position(connection, row)
            workspace = to_workspace(row._mapping)
            self._record_event(session, workspace, now)
            _record_history(connection, workspace, None)
        return workspace

    def add_document(
        self,
        *,
        user_id: int,
        workspace_id: int,
        filename: str,
        storage_key: str,
        progress: Progress,
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        now = _now()
        with transaction(self._source) as session:
            ensure_user(session, user_id, now)
            connection = session.connection()
            row = connection.execute(
                insert(documents)
                .values(
                    user_id=user_id,
                    workspace_id=workspace_id,
                    filename=filename,
                    storage_key=storage_key,
                    processing_status=DocumentProcessingStatus.PENDING.value,
                    processing_error=None,
                    chunk_count=0,
                    metadata=dict(metadata or {}),
                    progress=progress.to_json(),
                    version=FIRST_VERSION,
                    position=_next_position(connection.dialect.name),
                    created_at=now,
                    updated_at=now,
                )
                .returning(*documents.c)
            ).one()
            _took_position(connection, row)
            document = to_document(row._mapping)
            self._record_event(session, document, now)
            _record_history(connection, document, None)
        return document

    def get_document(self, document_id: int) -> Document | None:
        with transaction(self._source) as session:
            row = session.execute(select(documents).where(documents.c.id == document_id)).first()
        return None if row is None else to_document(row._mapping)

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        with transaction(self._source) as session:
            row = session.execute(select(workspaces).where(workspaces.c.id == workspace_id)).first()
        return None if row is None else to_workspace(row._mapping)

    def list_documents(self, *, user_id: int, workspace_id: int | None = None) -> list[Document]:
        query = select(documents).where(documents.c.user_id == user_id)
        if workspace_id is not None:
            query = query.where(documents.c.workspace_id == workspace_id)
        with transaction(self._source) as session:
            rows = session.execute(query.order_by(documents.c.id)).all()
        return [to_document(row._mapping) for row in rows]

    def list_workspaces(self, *, user_id: int) -> list[Workspace]:
        query = select(workspaces).where(workspaces.c.user_id == user_id)
        with transaction(self._source) as session:
            rows = session.execute(query.order_by(workspaces.c.id)).all()
        return [to_workspace(row._mapping) for row in rows]

    def update_document_status(self, change: DocumentStatusChange) -> Result[Document, Problem]:
        return self._apply(change, documents, to_document)

    def update_workspace_status(self, change: WorkspaceStatusChange) -> Result[Workspace, Problem]:
        return self._apply(change, workspaces, to_workspace)

    def _apply(
        self, change: StatusChange, table: Table, to_entity: Callable[[Mapping[Any, Any]], E]
    ) -> Result[E, Problem]:
        """Apply one checked, versioned status change and record its event, atomically."""
        now = _now()
        engine = self._engine()
        if engine is not None and engine.dialect.name == "postgresql":
            return self._apply_pipelined(engine, change, table, to_entity, now)
        with self._status_connection() as connection:
            row = _change_status(connection, table, change, now)
            if isinstance(row, Err):
                return row
            entity = to_entity(row.value._mapping)
            if connection.dialect.name != "postgresql":
                # PostgreSQL wrote the history row in the status statement itself.
                _record_history(connection, entity, change)
            self._record_event(connection, entity, now)
        return Ok(entity)

    def _apply_pipelined(
        self,
        engine: Engine,
        change: StatusChange,
        table: Table,
        to_entity: Callable[[Mapping[Any, Any]], E],
        now: datetime,
    ) -> Result[E, Problem]:
        """``_apply`` on PostgreSQL: one round trip without the outbox, two with it.

        Without the outbox the status statement is the whole transaction (autocommit). With
        it, BEGIN goes with the status statement and the outbox INSERT with the COMMIT: the
        bare psycopg connection in pipeline mode sends queued commands together. Either way
        the change cursor's row is locked for no longer than those round trips. The statements
        are compiled by SQLAlchemy once, then run on psycopg directly.
        """
        with psycopg_connection(engine, f"{table.name} status change") as raw:
            return self._apply_on_psycopg(raw, change, table, to_entity, now, engine.dialect)

    def _apply_on_psycopg(
        self,
        raw: psycopg.Connection[Any],
        change: StatusChange,
        table: Table,
        to_entity: Callable[[Mapping[Any, Any]], E],
        now: datetime,
        dialect: Any,
    ) -> Result[E, Problem]:
        """The status change on a pooled connection's psycopg connection."""
        transaction = _PipelinedTransaction(raw, dialect)
        if not self._outbox:
            # The change, its position and its history are one statement: atomic on its
            # own, so it runs as its own transaction, in one round trip.
            raw.autocommit = True
            try:
                row = _change_status(transaction, table, change, now)
            finally:
                raw.autocommit = False
            if isinstance(row, Err):
                return row
            return Ok(to_entity(row.value._mapping))
        with raw.pipeline():
            row = _change_status(transaction, table, change, now)
            if isinstance(row, Err):
                raw.rollback()  # frees the cursor's row the statement locked
                return row
            entity = to_entity(row.value._mapping)
            self._record_event(transaction, entity, now)
            raw.commit()
        return Ok(entity)

    def _engine(self) -> Engine | None:
        """The engine of a session factory; ``None`` for a caller's own ``Session``."""
        bind = None if isinstance(self._source, Session) else self._source.kw.get("bind")
        return bind if isinstance(bind, Engine) else None

    def history(
        self, entity: HistoryEntity, entity_id: int, *, limit: int, after: int | None = None
    ) -> list[StatusHistoryEntry]:
        with transaction(self._source) as session:
            rows = session.execute(
                _history_page(),
                {
                    "entity_type": entity.value,
                    "entity_id": entity_id,
                    "after": -1 if after is None else after,
                    "limit": limit,
                },
            ).all()
        return [
            StatusHistoryEntry(
                entity=entity,
                entity_id=entity_id,
                at=utc(row.at),
                from_status=row.from_status,
                to_status=row.to_status,
                version=row.version,
                position=row.position,
                actor=row.actor,
                step=row.step,
                step_seconds=row.step_seconds,
                error=row.error,
            )
            for row in rows
        ]

    @contextmanager
    def _status_connection(self) -> Iterator[Connection]:
        """One transaction for a status change, on a Core connection where possible.

        Status changes are the hot path: a bare ``Connection`` from the engine skips the ORM
        ``Session``'s bookkeeping. On the caller's own ``Session`` the change still happens
        (and is committed) in that session, so that its ``refresh`` sees it.
        """
        bind = None if isinstance(self._source, Session) else self._source.kw.get("bind")
        if isinstance(bind, Engine):
            with bind.begin() as connection:
                yield connection
            return
        with transaction(self._source) as session:
            yield session.connection()

    def _record_event(self, executor: Any, entity: Document | Workspace, now: datetime) -> None:
        """Write ``entity``'s event to the outbox in the open transaction, if outbox is on.

        ``executor`` is the transaction's ``Session`` or ``Connection`` (both ``execute``);
        it is typed loosely so that a subclass may narrow it to the one it expects.
        """
        if not self._outbox:
            return
        # The row stores the whole body, trace context included, for the relay to send as is.
        event = status_event_for(entity, traceparent=current_traceparent())
        entity_type, entity_id = entity_key(event)
        executor.execute(
            _outbox_insert(),
            {
                "event_id": event.event_id,
                "routing_key": event.routing_key,
                "body": encode(event).decode(),
                "entity_type": entity_type,
                "entity_id": entity_id,
                "version": entity.version,
                "created_at": now,
            },
        )


@cache
def _outbox_insert() -> Insert:
    return insert(outbox)


@cache
def _history_insert() -> Insert:
    return insert(status_history)


def _record_history(
    connection: Connection, entity: Document | Workspace, change: StatusChange | None
) -> None:
    """Keep ``entity``'s new status in its history, in the transaction that stored it.

    Creations, and status changes on SQLite, write it with a second small ``INSERT`` on the
    open connection; a status change on PostgreSQL writes it in its own statement instead.
    """
    kind, status, noted = recorded_status(entity)
    connection.execute(
        _history_insert(),
        {
            "entity_type": kind.value,
            "entity_id": entity.id,
            "to_status": status,
            "version": entity.version,
            "position": entity.position,
            "actor": None if change is None else change.actor,
            "step": None if change is None else change.step,
            "step_seconds": None if change is None else change.step_seconds,
            "error": noted,
            "at": entity.updated_at,
        },
    )


@cache
def _history_page() -> Select[Any]:
    """A page of one entity's history; each entry's former status is its predecessor's."""
    entries = (
        select(
            *status_history.c,
            func.lag(status_history.c.to_status)
            .over(order_by=status_history.c.position)
            .label("from_status"),
        )
        .where(
            status_history.c.entity_type == bindparam("entity_type"),
            status_history.c.entity_id == bindparam("entity_id"),
        )
        .subquery()
    )
    return (
        select(entries)
        .where(entries.c.position > bindparam("after"))
        .order_by(entries.c.position)
        .limit(bindparam("limit"))
    )


@cache
def _next_position(dialect: str) -> ScalarSelect[Any]:
    """The next position on the change cursor, as a value of the statement that takes it.

    A reader that answers "everything after position C" must never miss a change that commits
    later with a lower position, so positions are handed out in commit order: taking one locks
    the single ``installation`` row until the transaction ends, which serialises status changes
    and creations from the moment they take their position to their commit. On PostgreSQL the
    counter is bumped by a data-modifying CTE of the very ``UPDATE``/``INSERT`` that writes the
    entity (one round trip, and the row lock is taken before the entity's). SQLite, which has
    no such CTEs, reads the counter in that statement and ``_took_position`` stores it in the
    same transaction; its single writer already serialises transactions.
    """
    if dialect == "postgresql":
        bumped = (
            update(installation)
            .where(installation.c.id == INSTALLATION_ID)
            .values(last_position=installation.c.last_position + 1)
            .returning(installation.c.last_position)
            .cte("next_position")
        )
        return select(bumped.c.last_position).scalar_subquery()
    return (
        select(installation.c.last_position + 1)
        .where(installation.c.id == INSTALLATION_ID)
        .scalar_subquery()
    )


def _took_position(connection: Connection | _PipelinedTransaction, row: Any) -> None:
    """Record ``row``'s position as the last one handed out, where the statement did not."""
    if connection.dialect.name != "postgresql":
        connection.execute(_store_last_position(), {"position": row.position})


@cache
def _store_last_position() -> Update:
    return (
        update(installation)
        .where(installation.c.id == INSTALLATION_ID)
        .values(last_position=bindparam("position"))
    )


class _Shape(NamedTuple):
    """What tells one status ``UPDATE`` statement from another; its values are parameters."""

    status_column: str
    target: Enum
    allowed: tuple[str, ...]
    columns: tuple[str, ...]
    with_expected_version: bool


@cache
def _status_update(table: Table, shape: _Shape, dialect: str) -> Update | Select[Any]:
    """The conditional ``UPDATE … RETURNING`` of one shape, built once with bound parameters.

    Rebuilding the expression tree (and SQLAlchemy's cache key for it) on every call cost more
    CPU than the round trip to the database; the values of a call are all bound parameters.
    """
    status = table.c[shape.status_column]
    # The allowed statuses are constants of the statement, not an IN list expanded per call.
    allowed: list[Any] = [literal_column(_quoted(value)) for value in shape.allowed]
    # No allowed source (a move no status may make): a WHERE that is never true.
    conditions = [table.c.id == bindparam("entity_id"), status.in_(allowed) if allowed else false()]
    if shape.with_expected_version:
        conditions.append(table.c.version == bindparam("expected_version"))
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in shape.columns}
    values[shape.status_column] = shape.target.value
    values["version"] = table.c.version + 1
    values["position"] = _next_position(dialect)
    changed = update(table).where(*conditions).values(values).returning(*table.c)
    if dialect != "postgresql":
        return changed
    # One round trip for the change, its cursor position and its history entry: the UPDATE
    # and the INSERT are data-modifying CTEs of one statement that returns the changed row.
    changed_cte = changed.cte("changed")
    kind, noted_column = _HISTORY_OF[table.name]
    history_row = select(
        literal(kind.value, status_history.c.entity_type.type),
        changed_cte.c.id,
        changed_cte.c[shape.status_column],
        changed_cte.c.version,
        changed_cte.c.position,
        bindparam("history_actor", type_=status_history.c.actor.type),
        bindparam("history_step", type_=status_history.c.step.type),
        cast(bindparam("history_step_seconds"), status_history.c.step_seconds.type),
        changed_cte.c[noted_column],
        changed_cte.c.updated_at,
    )
    history = insert(status_history).from_select(_HISTORY_COLUMNS, history_row).cte("history")
    return select(changed_cte).add_cte(history)


_HISTORY_COLUMNS = (
    "entity_type",
    "entity_id",
    "to_status",
    "version",
    "position",
    "actor",
    "step",
    "step_seconds",
    "error",
    "at",
)
# Per table: the history's entity kind and the column it keeps as the entry's error.
_HISTORY_OF = {
    "documents": (HistoryEntity.DOCUMENT, "processing_error"),
    "workspaces": (HistoryEntity.WORKSPACE, "status_message"),
}


def _quoted(value: str) -> str:
    if not value.replace("_", "").isalnum():
        raise ValueError(f"not a status value: {value!r}")
    return f"'{value}'"


@cache
def _current_status(table: Table, status_column: str) -> Select[Any]:
    return select(table.c[status_column], table.c.version).where(
        table.c.id == bindparam("entity_id")
    )


def _column_value(value: object) -> object:
    """A field of a status change as its column stores it."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Progress):
        return value.to_json()
    return value


def _change_status(
    connection: Connection | _PipelinedTransaction,
    table: Table,
    change: StatusChange,
    now: datetime,
) -> Result[Any, Problem]:
    """Apply a status change in one statement; the changed row, or why there is none.

    The lifecycle check and ``version = version + 1`` are the WHERE and SET of a single
    ``UPDATE … RETURNING`` (PostgreSQL, and SQLite since 3.35). The database evaluates both
    on the latest committed row while holding its write lock: PostgreSQL re-checks the WHERE
    after waiting for a concurrent writer, SQLite has one writer at a time. So two processes
    can never skip or repeat a version or slip an illegal move in, without a separate
    ``SELECT … FOR UPDATE`` round trip (which SQLite lacks) or optimistic retry loops in the
    common case. Only a rejected change costs a second statement, to say why it was rejected.
    """
    status_column = change.status_field
    allowed = tuple(sorted(s.value for s in change.sources()))
    changes = {name: _column_value(value) for name, value in change.written().items()}
    changes["updated_at"] = now
    columns = tuple(sorted(name for name in changes if name != status_column))
    shape = _Shape(
        status_column, change.status, allowed, columns, change.expected_version is not None
    )
    statement = _status_update(table, shape, connection.dialect.name)
    parameters: dict[str, Any] = {f"new_{name}": changes[name] for name in columns}
    parameters["entity_id"] = change.entity_id
    parameters["history_actor"] = change.actor
    parameters["history_step"] = change.step
    parameters["history_step_seconds"] = change.step_seconds
    if change.expected_version is not None:
        parameters["expected_version"] = change.expected_version
    for _ in range(_ATTEMPTS):
        row = connection.execute(statement, parameters).first()
        if row is not None:
            _took_position(connection, row)
            return Ok(row)
        current = connection.execute(
            _current_status(table, status_column), {"entity_id": change.entity_id}
        ).first()
        if current is None:
            return Err(change.not_found())
        current_status, current_version = current
        refused = change.refusal(current_status, current_version)
        if refused is not None:
            return Err(refused)
    return Err(change.contended())


class _CompiledForPsycopg(NamedTuple):
    sql: str
    # The statement's parameters in the order of its $1, $2, … placeholders.
    names: tuple[str, ...]
    constants: dict[str, Any]
    json_parameters: frozenset[str]


_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``%(name)s`` placeholders as PostgreSQL's ``$n``: psycopg need not convert each call."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED_PARAMETER.sub(number, sql), tuple(names)


_compiled: dict[tuple[int, tuple[str, ...]], tuple[Any, _CompiledForPsycopg]] = {}


def _compiled_for_psycopg(
    statement: Any, dialect: Any, keys: tuple[str, ...]
) -> _CompiledForPsycopg:
    """``statement`` as psycopg's SQL text, with its constant parameters; once per statement.

    The statements are built once (``@cache``), so their identity is a stable key; the entry
    keeps the statement alive so that the identity is never reused.
    """
    key = (id(statement), keys)
    found = _compiled.get(key)
    if found is not None:
        return found[1]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    binds = compiled.bind_names.items()
    sql, names = _numbered(compiled.string)
    entry = _CompiledForPsycopg(
        sql,
        names,
        {name: bind.effective_value for bind, name in binds if not bind.required},
        frozenset(name for bind, name in binds if isinstance(bind.type, JSON)),
    )
    _compiled[key] = (statement, entry)
    return entry


class _RawRow:
    """A result row by name and by position, like SQLAlchemy's ``Row`` where it is used."""

    __slots__ = ("_mapping", "_values")

    def __init__(self, names: list[str], values: tuple[Any, ...]) -> None:
        self._values = values
        self._mapping = dict(zip(names, values, strict=True))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


# The result's column names per statement: psycopg builds a ``description`` afresh each time.
_column_names: dict[str, list[str]] = {}


class _RawResult:
    def __init__(self, cursor: Any, sql: str) -> None:
        self._cursor = cursor
        self._sql = sql

    def first(self) -> _RawRow | None:
        values = self._cursor.fetchone()
        if values is None:
            return None
        names = _column_names.get(self._sql)
        if names is None:
            names = _column_names[self._sql] = [c.name for c in self._cursor.description]
        return _RawRow(names, values)


class _PipelinedTransaction:
    """What ``_change_status`` and ``_record_event`` use of a ``Connection``, on psycopg.

    ``execute`` only queues the command in the connection's pipeline; reading a row of its
    result (``first``) sends everything queued and waits for the answer.
    """

    def __init__(self, raw: Any, dialect: Any) -> None:
        self._cursor = psycopg.RawCursor(raw)
        self.dialect = dialect

    def execute(self, statement: Any, parameters: Mapping[str, Any]) -> _RawResult:
        compiled = _compiled_for_psycopg(statement, self.dialect, tuple(parameters))
        json_parameters = compiled.json_parameters
        values = []
        for name in compiled.names:
            value = parameters[name] if name in parameters else compiled.constants[name]
            if value is not None and name in json_parameters:
                value = json.dumps(value)
            values.append(value)
        self._cursor.execute(compiled.sql, values)
        return _RawResult(self._cursor, compiled.sql)
