"""RagConfigs in dictionaries."""

from __future__ import annotations

import threading

from domain.entities import RagConfig
from domain.ports import RagConfigs


class InMemoryRagConfigs(RagConfigs):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.defaults: dict[int, RagConfig] = {}
        self.workspaces: dict[int, RagConfig] = {}

    def defaults_for(self, user_id: int) -> RagConfig | None:
        with self._lock:
            return self.defaults.get(user_id)

    def set_defaults(self, user_id: int, config: RagConfig) -> None:
        with self._lock:
            self.defaults[user_id] = config

    def for_workspace(self, workspace_id: int) -> RagConfig | None:
        with self._lock:
            return self.workspaces.get(workspace_id)

    def save_for_workspace(self, workspace_id: int, config: RagConfig) -> None:
        with self._lock:
            self.workspaces[workspace_id] = config
