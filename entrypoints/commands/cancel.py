"""``insighthub cancel``: cancel a document's processing or a workspace's provisioning.

It acts as the deployment's operator: no token, any user's document or workspace, with the
deployment's own configuration (like ``insighthub migrate``).
"""

from __future__ import annotations

import argparse
import os
import sys

from adapters.bootstrap import NO_OVERRIDES, Overrides, bootstrap
from domain.entities import Document, Workspace
from domain.history import OPERATOR_ACTOR
from domain.problems import Problem
from domain.result import Err, Result


def _entity_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {raw!r}")
    return int(raw)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cancel",
        help="cancel a pending or processing document, or a provisioning workspace",
        description="Cancel as the operator: a document ends failed ('cancelled by user') and "
        "its worker stops within a second or two; a workspace ends in error. Exits 1 when the "
        "entity is missing or already finished.",
    )
    parser.add_argument("kind", choices=("document", "workspace"), help="what to cancel")
    parser.add_argument("id", type=_entity_id, metavar="ID", help="its id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    services = bootstrap(os.environ, overrides=overrides)
    try:
        cancelled: Result[Document, Problem] | Result[Workspace, Problem]
        if args.kind == "document":
            cancelled = services.documents.cancel(
                user_id=None, document_id=args.id, actor=OPERATOR_ACTOR
            )
        else:
            cancelled = services.workspaces.cancel(
                user_id=None, workspace_id=args.id, actor=OPERATOR_ACTOR
            )
    finally:
        services.close()
    if isinstance(cancelled, Err):
        print(f"insighthub cancel: {cancelled.error.message}", file=sys.stderr)
        return 1
    print(f"{args.kind} {args.id} cancelled (version {cancelled.value.version})")
    return 0
