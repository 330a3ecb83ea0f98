"""``insighthub migrate``: upgrade the database schema to the latest revision."""

from __future__ import annotations

import argparse
import os
import sys

from adapters.bootstrap import NO_OVERRIDES, MigrationFailed, Overrides, migrate_database
from adapters.settings import ConfigError, Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="upgrade the database schema to the latest revision",
        description="Apply every pending migration to the database named by DATABASE_URL "
        "(SQLite files also migrate themselves on start; PostgreSQL needs this first).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    settings = Settings.from_environ(os.environ)
    if settings.persistence == "memory":
        print("insighthub migrate: DATABASE_URL is memory://, which has no schema to migrate")
        return 0
    try:
        done = migrate_database(settings.database_url)
    except ConfigError as exc:
        print(f"insighthub migrate: {exc}", file=sys.stderr)
        return 1
    except MigrationFailed as exc:
        print(f"insighthub migrate: migration failed: {exc}", file=sys.stderr)
        return 1
    if done.before == done.after:
        print(f"{done.where}: schema already at the latest revision {done.after}")
    else:
        print(f"{done.where}: schema upgraded from {done.before or 'empty'} to {done.after}")
    return 0
