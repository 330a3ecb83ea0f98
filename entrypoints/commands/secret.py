"""``insighthub secret``: print a fresh value for ``SECRET_KEY``."""

from __future__ import annotations

import argparse

from adapters.bootstrap import NO_OVERRIDES, Overrides
from adapters.settings import SECRET_BYTES, new_secret


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "secret",
        help="print a fresh SECRET_KEY",
        description=f"Print a new random SECRET_KEY ({SECRET_BYTES} bytes, URL-safe base64), "
        "e.g. export SECRET_KEY=$(insighthub secret). Give every server the same one.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    print(new_secret())
    return 0
