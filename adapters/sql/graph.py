"""GraphStore on SQLAlchemy: a document's entities and links in ``graph_nodes``/``graph_edges``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import graph_edges, graph_nodes
from adapters.sql.sessions import transaction
from domain.entities import GraphEdge, GraphNode
from domain.ports.processing import GraphStore


class SqlGraphStore(GraphStore):
    """A document's graph in two tables; ``replace`` is one transaction."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def replace(
        self, document_id: int, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]
    ) -> None:
        with transaction(self._sessions) as session:
            for table in (graph_edges, graph_nodes):
                session.execute(delete(table).where(table.c.document_id == document_id))
            if nodes:
                session.execute(
                    insert(graph_nodes),
                    [
                        {"document_id": document_id, "label": n.label, "mentions": n.mentions}
                        for n in nodes
                    ],
                )
            if edges:
                session.execute(
                    insert(graph_edges),
                    [
                        {
                            "document_id": document_id,
                            "source": e.source,
                            "target": e.target,
                            "weight": e.weight,
                        }
                        for e in edges
                    ],
                )

    def counts(self, document_id: int) -> tuple[int, int]:
        with transaction(self._sessions) as session:
            found = [
                session.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.document_id == document_id)
                ).scalar_one()
                for table in (graph_nodes, graph_edges)
            ]
        return int(found[0]), int(found[1])
