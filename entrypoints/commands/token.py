"""``insighthub token``: print a bearer token (an HS256 JWT) for a user."""

from __future__ import annotations

import argparse
import os
import sys

from adapters.bootstrap import NO_OVERRIDES, Overrides, bootstrap
from application.tokens import DEFAULT_TTL_SECONDS, OPERATOR_ROLE


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print a bearer token for a user",
        description="Print one bearer token (a JWT, HS256) for the given user, signed with a key "
        "derived from SECRET_KEY. "
        "A server accepts it only if it runs with the same SECRET_KEY.",
    )
    parser.add_argument("--user", type=_positive_int, required=True, metavar="ID", help="user id")
    parser.add_argument(
        "--ttl",
        type=_positive_int,
        default=DEFAULT_TTL_SECONDS,
        metavar="SECONDS",
        help=f"how long the token is valid (default {DEFAULT_TTL_SECONDS})",
    )
    parser.add_argument(
        "--operator",
        action="store_true",
        help="give the token the operator role: it opens the console at /admin and /api/admin",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    services = bootstrap(os.environ, overrides=overrides)
    settings = services.settings
    if not settings.secret_key_given:
        print(
            "insighthub token: SECRET_KEY is not set; this token is signed with a throwaway "
            "key that no server will accept",
            file=sys.stderr,
        )
    role = OPERATOR_ROLE if args.operator else None
    print(services.token_issuer.issue(args.user, args.ttl, role=role))
    return 0
