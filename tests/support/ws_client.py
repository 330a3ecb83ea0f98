"""A browser-protocol status client: what the live page does, in a thread, with counters.

It connects to ``/ws`` with a token, applies the snapshot, then applies each delta only if it
is newer than the version it holds for that entity (counting the others as duplicates
absorbed), and reconnects with backoff (to the next of its URLs) whenever the link drops,
taking a fresh snapshot each time. ``view`` is what the page would show.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

EntityKey = tuple[str, int]
# What a page shows of an entity: its version and status.
Shown = tuple[int, str]


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
    ) -> None:
        self._urls = list(urls)
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
        return self.view == dict(expected)

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
            url = f"{self._urls[attempt % len(self._urls)]}?token={self._token}"
            attempt += 1
            try:
                with connect(url, open_timeout=5, close_timeout=1, max_size=None) as connection:
                    self._connection = connection
                    self.connects += 1
                    backoff = 0.1
                    self._serve(connection)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._connection = None
                self.connected.clear()
            if self._stopped.is_set():
                return
            time.sleep(backoff)
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
                self._apply(json.loads(raw))
        finally:
            self.close_codes.append(connection.close_code)

    def _apply(self, frame: Mapping[str, Any]) -> None:
        kind = frame.get("type")
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
            held = self._view.get(entity)
            if held is not None and data["version"] <= held[0]:
                self.duplicates += 1
                return
            self._view[entity] = (data["version"], data["status"])
            self.deltas_applied += 1

    def _drop(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
