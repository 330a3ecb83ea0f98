"""GraphStore in a dictionary."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from domain.entities import GraphEdge, GraphNode
from domain.ports.processing import GraphStore


class InMemoryGraphStore(GraphStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.graphs: dict[int, tuple[tuple[GraphNode, ...], tuple[GraphEdge, ...]]] = {}

    def replace(
        self, document_id: int, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]
    ) -> None:
        with self._lock:
            self.graphs[document_id] = (tuple(nodes), tuple(edges))

    def counts(self, document_id: int) -> tuple[int, int]:
        with self._lock:
            nodes, edges = self.graphs.get(document_id, ((), ()))
            return len(nodes), len(edges)
