"""The ``insighthub`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapters.bootstrap import NO_OVERRIDES, Overrides
from adapters.settings import ConfigError
from entrypoints.commands import admin, cancel, demo, migrate, relay, secret, serve, token, worker

COMMANDS = (demo, migrate, serve, token, worker, relay, secret, cancel, admin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="insighthub",
        description="Track long-running operations and push every status change live.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, overrides: Overrides = NO_OVERRIDES) -> int:
    """Run one command; ``overrides`` go to its ``bootstrap`` (see ``adapters.bootstrap``)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args, overrides)
    except ConfigError as exc:
        # Also the database's start-up errors (malformed, unreachable, not migrated): each
        # message names its variable and says what to do, so no traceback is shown.
        print(f"insighthub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
