"""Alembic environment: the same ``DATABASE_URL`` as the application, or a given connection."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from adapters.settings import Settings
from adapters.sql.database import create_engine_for, parse_url
from adapters.sql.records import Record

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Record.metadata


def database_url() -> str:
    """The caller's ``sqlalchemy.url`` if set, else ``DATABASE_URL`` read as the app reads it."""
    given = config.get_main_option("sqlalchemy.url")
    if given:
        return given
    return Settings.from_environ(os.environ).database_url


def run_on(connection: Connection) -> None:
    on_sqlite = connection.dialect.name == "sqlite"
    if on_sqlite:
        # SQLite alters a table by rebuilding it (batch mode); enforced foreign keys would make
        # dropping the old copy cascade or fail. The pragma only takes effect outside a
        # transaction, hence the commits around it.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=on_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if on_sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = create_engine_for(parse_url(database_url()))
    try:
        with engine.connect() as own:
            run_on(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
