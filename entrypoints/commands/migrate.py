"""``insighthub migrate``: upgrade the database schema to the latest revision."""

from __future__ import annotations

import argparse
import os
import sys

from adapters.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="upgrade the database schema to the latest revision",
        description="Apply every pending migration to the database named by DATABASE_URL "
        "(SQLite files also migrate themselves on start; PostgreSQL needs this first).",
    )
    parser.set_defaults(handler=run)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_environ(os.environ)
    if settings.persistence == "memory":
        print("insighthub migrate: DATABASE_URL is memory://, which has no schema to migrate")
        return 0
    # Imported here so that commands without a database never load SQLAlchemy or Alembic.
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.sql.database import DatabaseStartupError, describe, migrate, parse_url

    try:
        before, after = migrate(settings.database_url)
    except DatabaseStartupError as exc:
        print(f"insighthub migrate: {exc}", file=sys.stderr)
        return 1
    except (CommandError, SQLAlchemyError) as exc:
        print(f"insighthub migrate: migration failed: {_first_line(exc)}", file=sys.stderr)
        return 1
    where = describe(parse_url(settings.database_url))
    if before == after:
        print(f"{where}: schema already at the latest revision {after}")
    else:
        print(f"{where}: schema upgraded from {before or 'empty'} to {after}")
    return 0
