"""Connecting to the database, and keeping its schema at the migrations' head.

SQLite (the embedded default) migrates itself on connect, so a first run needs nothing
installed. PostgreSQL is shared by many processes, so it is migrated once, on purpose, by
``insighthub migrate``; a process finding it behind refuses to start.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    OperationalError,
    StatementError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection, StaticPool

from adapters.settings import ConfigError

SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVER = "postgresql+psycopg"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
# A pooled connection idle at least this long is pinged before it is handed out again.
PING_AFTER_IDLE_SECONDS = 0.25


class DatabaseStartupError(ConfigError):
    """The database cannot be used as configured; the message is one line an operator can act on."""

    def __init__(self, problem: str) -> None:
        super().__init__("DATABASE_URL", problem)
        self.problem = problem


class MalformedDatabaseUrl(DatabaseStartupError):
    """``DATABASE_URL`` cannot be parsed, or names a driver this application does not use."""


class DatabaseUnreachable(DatabaseStartupError):
    """The server (or the SQLite file) cannot be opened."""


class SchemaNotReady(DatabaseStartupError):
    """The schema is not at the migrations' head: ``insighthub migrate`` has not been run."""


def parse_url(raw: str) -> URL:
    """The SQLAlchemy URL for ``raw``; a bare ``postgresql://`` means psycopg 3."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise MalformedDatabaseUrl(f"cannot parse {raw!r} as a database URL ({exc})") from None
    if url.drivername == "postgresql":
        url = url.set(drivername=POSTGRES_DRIVER)
    if url.drivername not in (*SQLITE_DRIVERS, POSTGRES_DRIVER):
        raise MalformedDatabaseUrl(
            f"unsupported driver {url.drivername!r}: use sqlite:///PATH or "
            f"{POSTGRES_DRIVER}://USER@HOST:PORT/DATABASE"
        )
    return url


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def _is_sqlite(url: URL) -> bool:
    return url.drivername in SQLITE_DRIVERS


def _in_memory(url: URL) -> bool:
    return _is_sqlite(url) and url.database in (None, "", ":memory:")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers and one writer work at once; the busy timeout makes a second
        # writer wait its turn instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine_for(url: URL) -> Engine:
    """An engine configured for the URL's engine; the SQLite file's directory is created."""
    if _is_sqlite(url):
        options: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        }
        if _in_memory(url):
            # One shared connection: every thread must see the same in-memory database.
            options["poolclass"] = StaticPool
        elif url.database is not None:
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnreachable(
                    f"cannot create the directory of the SQLite file {url.database!r}: "
                    f"{exc.strerror or exc}"
                ) from None
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    event.listen(engine.pool, "checkin", _note_checkin)
    event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


@contextmanager
def psycopg_connection(engine: Engine, what: str) -> Iterator[psycopg.Connection[Any]]:
    """A pooled PostgreSQL connection's own psycopg connection, for the hot paths.

    Its errors come out as SQLAlchemy's would (``OperationalError`` for an unreachable server,
    …, the statement named ``what``), and a connection that lost its server leaves the pool.
    """
    # The pool's own connection, without an engine ``Connection`` around it: nothing here
    # runs through SQLAlchemy's execution, and that wrapper is a tenth of a change's CPU.
    try:
        pooled = engine.raw_connection()
    except psycopg.Error as exc:  # as ``engine.connect()`` would say it
        raise _sqlalchemy_error(engine, exc, None) from exc
    try:
        raw = pooled.driver_connection
        assert isinstance(raw, psycopg.Connection), "a PostgreSQL engine's connection is psycopg's"
        try:
            yield raw
        except psycopg.Error as exc:
            raise _sqlalchemy_error(engine, exc, what, pooled) from exc
    finally:
        pooled.close()


def _sqlalchemy_error(
    engine: Engine,
    error: psycopg.Error,
    statement: str | None,
    pooled: PoolProxiedConnection | None = None,
) -> StatementError:
    """``error`` as SQLAlchemy raises it; a ``pooled`` connection that lost its server leaves
    the pool."""
    raw = None if pooled is None else pooled.driver_connection
    lost = engine.dialect.is_disconnect(error, raw, None)  # type: ignore[arg-type]
    if lost and pooled is not None:
        pooled.invalidate(error)
    return DBAPIError.instance(statement, None, error, psycopg.Error, connection_invalidated=lost)


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Check a pooled connection that sat idle before handing it out; reconnect if it is dead.

    A ping on every checkout (``pool_pre_ping``) costs a round trip per status change. A
    connection handed back a moment ago was alive a moment ago; one that sat idle may have lost
    its server (a restart, an idle timeout), so it is checked, and a dead one is replaced by the
    pool before anyone uses it. A server lost in the gap of a busy loop fails that one call,
    and the pool then replaces all its older connections.
    """
    idle = time.monotonic() - record.info.get("checked_in_at", 0.0)
    if idle < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is dead: {exc}") from exc


def migrations_directory() -> str:
    """Where the Alembic scripts live, found through the installed ``migrations`` package."""
    spec = importlib.util.find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'migrations' package is not installed with the application")
    return str(next(iter(spec.submodule_search_locations)))


def alembic_config(
    *, connection: Connection | None = None, url: str | None = None, stdout: Any = None
) -> Config:
    """An Alembic configuration that needs no ``alembic.ini`` and no working directory.

    With ``connection`` the migrations run on it; with ``url`` they connect there; with
    neither, ``migrations/env.py`` reads ``DATABASE_URL`` the way the application does.
    """
    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", migrations_directory())
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations have no head revision")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the schema is at, ``None`` for a database never migrated."""
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()
    return revision


def upgrade_to_head(engine: Engine) -> None:
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection=connection), "head")


def _unreachable(url: URL, exc: OperationalError) -> DatabaseUnreachable:
    reason = str(exc.orig or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return DatabaseUnreachable(f"cannot connect to {describe(url)}: {first}")


def _revision_of(engine: Engine, url: URL) -> str | None:
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    except OperationalError as exc:
        raise _unreachable(url, exc) from None


_sqlite_migration_lock = threading.Lock()


def migrate(raw_url: str) -> tuple[str | None, str]:
    """Upgrade the database at ``raw_url`` to head; the revisions before and after."""
    url = parse_url(raw_url)
    engine = create_engine_for(url)
    try:
        before = _revision_of(engine, url)
        try:
            upgrade_to_head(engine)
        except OperationalError as exc:
            raise _unreachable(url, exc) from None
        return before, head_revision()
    finally:
        engine.dispose()


@dataclass
class Database:
    """An engine and its session factory, for one ``DATABASE_URL``."""

    engine: Engine
    session_factory: sessionmaker[Session]
    outbox: bool = False

    @classmethod
    def connect(cls, url: str, *, outbox: bool = False) -> Database:
        """Connect and check the schema; ``DatabaseStartupError`` says what is wrong."""
        parsed = parse_url(url)
        engine = create_engine_for(parsed)
        try:
            cls._ensure_schema(engine, parsed)
        except BaseException:
            engine.dispose()
            raise
        return cls(
            engine=engine,
            session_factory=sessionmaker(bind=engine, expire_on_commit=False),
            outbox=outbox,
        )

    @staticmethod
    def _ensure_schema(engine: Engine, url: URL) -> None:
        head = head_revision()
        current = _revision_of(engine, url)
        if current == head:
            return
        if not _is_sqlite(url):
            found = "empty" if current is None else f"at revision {current}"
            raise SchemaNotReady(
                f"the schema of {describe(url)} is {found}, not at the latest revision "
                f"{head}: run `insighthub migrate` first"
            )
        with _sqlite_migration_lock:
            try:
                upgrade_to_head(engine)
            except OperationalError as exc:
                # Another process may have migrated the same file at the same moment.
                if _revision_of(engine, url) != head:
                    raise _unreachable(url, exc) from None

    def close(self) -> None:
        self.engine.dispose()
