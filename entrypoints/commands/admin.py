"""``insighthub admin``: the operator's console on the command line.

It runs with the deployment's configuration (no token): whoever can run it can already reach
the database and the broker. Every action is recorded with who did it: ``--as NAME``, or the
operating-system user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from adapters.bootstrap import NO_OVERRIDES, Overrides, bootstrap
from application.operations import OperatorConsole
from domain.problems import Problem
from domain.result import Err, Result
from entrypoints.operations_json import (
    action_json,
    figures_json,
    letter_json,
    stuck_json,
    worker_json,
)

STUCK_WINDOW_SECONDS = 10.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "admin",
        help="look at and settle dead letters, live workers and stuck work",
        description="The operator's console: each subcommand prints JSON lines, one per item.",
    )
    parser.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        help="who the action is recorded as (default: the operating-system user)",
    )
    actions = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    letters = actions.add_parser("dead-letters", help="list dead letters")
    letters.add_argument("--queue", metavar="Q", help="one work queue only")
    letters.set_defaults(handler=run, action=_dead_letters)
    requeue = actions.add_parser("requeue", help="deliver a dead letter (or all) afresh")
    requeue.add_argument("queue", metavar="QUEUE")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("letter_id", nargs="?", metavar="ID")
    which.add_argument("--all", action="store_true", help="every dead letter of QUEUE")
    requeue.set_defaults(handler=run, action=_requeue)
    discard = actions.add_parser("discard", help="remove a dead letter for good")
    discard.add_argument("queue", metavar="QUEUE")
    discard.add_argument("letter_id", metavar="ID")
    discard.set_defaults(handler=run, action=_discard)
    workers = actions.add_parser("workers", help="list live workers")
    workers.set_defaults(handler=run, action=_workers)
    stuck = actions.add_parser("stuck", help="work without a live lease, and recoveries")
    stuck.set_defaults(handler=run, action=_stuck)
    queues = actions.add_parser(
        "queues",
        help="per stage: queue depth, age of the oldest waiting request, dead letters, rates",
    )
    queues.set_defaults(handler=run, action=_queues)
    log = actions.add_parser("actions", help="the latest operator actions")
    log.set_defaults(handler=run, action=_actions)


Action = Callable[[OperatorConsole, argparse.Namespace, str], int]


def run(args: argparse.Namespace, overrides: Overrides = NO_OVERRIDES) -> int:
    services = bootstrap(overrides=overrides)
    try:
        action: Action = args.action
        return action(services.operator_console, args, args.actor or getpass.getuser())
    finally:
        services.close()


def _print(item: Any) -> None:
    print(json.dumps(item, sort_keys=True))


def _dead_letters(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    found = console.dead_letters(args.queue)
    if isinstance(found, Err):
        print(f"insighthub admin: {found.error.message}", file=sys.stderr)
        return 1
    for letters in found.value.values():
        for letter in letters:
            _print(letter_json(letter))
    return 0


def _requeue(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    if args.all:
        return _settled(args.queue, console.requeue_all(args.queue, actor=actor))
    return _settled(args.queue, console.requeue(args.queue, args.letter_id, actor=actor))


def _discard(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    return _settled(args.queue, console.discard(args.queue, args.letter_id, actor=actor))


def _settled(queue: str, result: Result[int, Problem] | Result[bool, Problem]) -> int:
    if isinstance(result, Err):
        print(f"insighthub admin: {result.error.message}", file=sys.stderr)
        return 1
    _print({"queue": queue, "count": int(result.value)})
    return 0


def _workers(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    for beat in console.workers():
        _print(worker_json(beat))
    return 0


def _stuck(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    _print(stuck_json(console.stuck(expiring_within=STUCK_WINDOW_SECONDS)))
    return 0


def _actions(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    for action in console.actions():
        _print(action_json(action))
    return 0


def _queues(console: OperatorConsole, args: argparse.Namespace, actor: str) -> int:
    for figures in console.figures():
        _print(figures_json(figures))
    return 0
