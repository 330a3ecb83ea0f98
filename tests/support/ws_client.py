"""A browser-protocol status client: what the live page does, in a thread, with counters.

It connects to ``/ws`` with a token and reconnects with backoff (to the next of its URLs)
whenever the link drops. Without ``scopes`` it speaks protocol 1: a snapshot of everything
the user owns on every (re)connect. With ``scopes`` it speaks protocol 2: each scope's answer
(a first page, or the changes after the cursor it holds) is merged into what it holds, and
every reconnect presents the latest cursor it was given, as the page does. Either way a delta
is applied only if it is newer than the version held for its entity (the others are counted
as duplicates absorbed). ``view`` is what the page would show; ``links`` counts, per
(re)connection, the bytes received and how each scope was answered.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.support.live import subscription_query

EntityKey = tuple[str, int]
# What a page shows of an entity: its version and status.
Shown = tuple[int, str]


@dataclass
class Link:
    """One (re)connection of a client: what it presented, received, and was answered."""

    cursor: str | None
    opened_at: float
    bytes_received: int = 0
    # Bytes of the first answer of every scope (protocol 2) or of the first snapshot.
    answer_bytes: int = 0
    # Per scope, ``resumed`` or ``snapshot``, and the entities of its first answer.
    modes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str | None] = field(default_factory=dict)
    answered: dict[str, set[EntityKey]] = field(default_factory=dict)
    answered_at: float | None = None

    @property
    def resumed(self) -> bool:
        """Every scope was answered with the changes after the presented cursor."""
        return bool(self.modes) and set(self.modes.values()) == {"resumed"}


def later_cursor(held: str | None, offered: str | None) -> str | None:
    """The later of two cursors of one epoch; a cursor of another epoch replaces the one held."""
    if offered is None:
        return held
    if held is None:
        return offered
    held_epoch, _, held_position = held.rpartition(":")
    epoch, _, position = offered.rpartition(":")
    if epoch != held_epoch or int(position) > int(held_position):
        return offered
    return held


class StatusClient:
    """One browser tab's worth of the status protocol, run on a background thread."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        *,
        name: str = "client",
        read: bool = True,
        max_backoff: float = 2.0,
        scopes: Sequence[str] = (),
    ) -> None:
        self._urls = list(urls)
        self.scopes = list(scopes)
        # Protocol 2: the latest cursor given, and per scope the HTTP key of its next page.
        self.cursor: str | None = None
        self.more: dict[str, str | None] = {}
        self._parts: dict[str, list[dict[str, Any]]] = {}
        self._workspace_of: dict[int, int] = {}
        self.links: list[Link] = []
        self._token = token
        self.name = name
        self._read = read
        self._max_backoff = max_backoff
        self._lock = threading.Lock()
        self._view: dict[EntityKey, Shown] = {}
        self._online = threading.Event()
        self._online.set()
        self._stopped = threading.Event()
        self._connection: ClientConnection | None = None
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.snapshots = 0
        self.deltas_received = 0
        self.deltas_applied = 0
        self.duplicates = 0
        self.connects = 0
        self.close_codes: list[int | None] = []
        self.errors: list[str] = []

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> StatusClient:
        self._thread = threading.Thread(target=self._run, name=f"ws-{self.name}", daemon=True)
        self._thread.start()
        return self

    def go_offline(self) -> None:
        """Drop the link and stay away until ``go_online``, as a tab on a sleeping laptop."""
        self._online.clear()
        self._drop()

    def go_online(self) -> None:
        self._online.set()

    def close(self) -> None:
        self._stopped.set()
        self._online.set()
        self._drop()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- what it shows ----------------------------------------------------------------------

    @property
    def view(self) -> dict[EntityKey, Shown]:
        with self._lock:
            return dict(self._view)

    def shows(self, expected: Mapping[EntityKey, Shown]) -> bool:
        return self.view == self.expected_of(expected)

    def expected_of(self, truth: Mapping[EntityKey, Shown]) -> dict[EntityKey, Shown]:
        """What of ``truth`` this client should show.

        All of it, except the documents past the first page of a scope answered with a page:
        those are a page request away, and shown only once a change to one is sent.
        """
        with self._lock:
            held = set(self._view)
            page_ends = [
                int(m) for s, m in self.more.items() if m is not None and s != "workspaces"
            ]
        if not page_ends:
            return dict(truth)
        end = min(page_ends)
        return {
            key: shown
            for key, shown in truth.items()
            if key[0] == "workspace" or key in held or key[1] <= end
        }

    def wait_until(self, condition: Callable[[StatusClient], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # -- the protocol -----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        attempt = 0
        while not self._stopped.is_set():
            self._online.wait()
            if self._stopped.is_set():
                return
            query = subscription_query(self._token, self.scopes, self.cursor)
            url = f"{self._urls[attempt % len(self._urls)]}?{query}"
            attempt += 1
            try:
                # A storm of reconnections on a busy machine may take a while to be let in; and
                # a page notices a dead server by its link closing, not by missed pings.
                with connect(
                    url, open_timeout=30, close_timeout=1, max_size=None, ping_interval=None
                ) as connection:
                    self._connection = connection
                    with self._lock:
                        self._parts = {}
                        self.links.append(Link(self.cursor, time.monotonic()))
                    self.connects += 1
                    backoff = 0.1
                    self._serve(connection)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._connection = None
                self.connected.clear()
            if self._stopped.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def _serve(self, connection: ClientConnection) -> None:
        try:
            while self._online.is_set() and not self._stopped.is_set():
                if not self._read:
                    time.sleep(0.1)
                    continue
                try:
                    raw = connection.recv(timeout=0.5)
                except TimeoutError:
                    continue
                text = raw if isinstance(raw, str) else raw.decode()
                self._apply(json.loads(text), len(text.encode()))
        finally:
            self.close_codes.append(connection.close_code)

    def _apply(self, frame: Mapping[str, Any], size: int = 0) -> None:
        kind = frame.get("type")
        link = self.links[-1] if self.links else None
        if link is not None:
            link.bytes_received += size
            if link.answered_at is None:
                link.answer_bytes += size
        if kind == "sync":
            self._apply_sync(frame, link)
            return
        if kind == "snapshot":
            with self._lock:
                fresh: dict[EntityKey, Shown] = {}
                for document in frame["documents"]:
                    fresh[("document", document["id"])] = (
                        document["version"],
                        document["processing_status"],
                    )
                for workspace in frame["workspaces"]:
                    fresh[("workspace", workspace["id"])] = (
                        workspace["version"],
                        workspace["status"],
                    )
                for key, shown in self._view.items():
                    # A delta newer than the snapshot cannot precede it on one link; across
                    # links the newer of the two is kept, as the page does.
                    if key in fresh and shown[0] > fresh[key][0]:
                        fresh[key] = shown
                self._view = fresh
                self.snapshots += 1
                if link is not None and link.answered_at is None:
                    link.answered_at = time.monotonic()
            self.connected.set()
            return
        if kind not in ("document_status", "workspace_status"):
            self.errors.append(f"unexpected frame type {kind!r}")
            return
        data = frame["data"]
        entity: EntityKey = (
            ("document", data["document_id"])
            if kind == "document_status"
            else ("workspace", data["workspace_id"])
        )
        with self._lock:
            self.deltas_received += 1
            self.cursor = later_cursor(self.cursor, frame.get("cursor"))
            if kind == "document_status":
                self._workspace_of[data["document_id"]] = data["workspace_id"]
            held = self._view.get(entity)
            if held is not None and data["version"] <= held[0]:
                self.duplicates += 1
                return
            self._view[entity] = (data["version"], data["status"])
            self.deltas_applied += 1

    def _apply_sync(self, frame: Mapping[str, Any], link: Link | None) -> None:
        """One part of a scope's answer; the parts are applied together with the last."""
        scope: str = frame["scope"]
        parts = self._parts.setdefault(scope, [])
        if frame["part"] == 0:
            parts.clear()
        parts.extend(frame["entities"])
        if not frame["last"]:
            return
        entity_kind = "document" if frame["kind"] == "document" else "workspace"
        status_field = "processing_status" if entity_kind == "document" else "status"
        answered = {
            (entity_kind, entity["id"]): (entity["version"], entity[status_field])
            for entity in parts
        }
        if entity_kind == "document":
            self._workspace_of.update((entity["id"], entity["workspace_id"]) for entity in parts)
        self._parts.pop(scope, None)
        with self._lock:
            if frame["mode"] == "snapshot":
                # A first page replaces what was held of the scope; a newer version held
                # (from a delta on another link) is kept, as the page does.
                for key in [k for k in self._view if self._in_scope(k, scope)]:
                    if key not in answered:
                        del self._view[key]
            for key, shown in answered.items():
                held = self._view.get(key)
                if held is None or shown[0] > held[0]:
                    self._view[key] = shown
            if frame["mode"] == "snapshot":
                # A resumed answer leaves the pages held as they were.
                self.more[scope] = frame["more"]
            self.cursor = later_cursor(self.cursor, frame["cursor"])
            if link is not None and scope not in link.modes:
                link.modes[scope] = frame["mode"]
                link.reasons[scope] = frame["reason"]
                link.answered[scope] = set(answered)
                if set(link.modes) >= set(self.scopes):
                    link.answered_at = time.monotonic()
                    self.snapshots += frame["mode"] == "snapshot"
        if link is not None and link.answered_at is not None:
            self.connected.set()

    def _in_scope(self, key: EntityKey, scope: str) -> bool:
        kind, entity_id = key
        if scope == "workspaces":
            return kind == "workspace"
        if kind != "document":
            return False
        name, _, ids = scope.partition(":")
        if name == "workspace":
            return self._workspace_of.get(entity_id) == int(ids)
        return str(entity_id) in ids.split(",")

    def _drop(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
