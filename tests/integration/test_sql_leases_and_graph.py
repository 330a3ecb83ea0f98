"""Document leases (on the database's clock) and the graph store, on each engine."""

from __future__ import annotations

import time

from adapters.sql.database import Database
from adapters.sql.graph import SqlGraphStore
from adapters.sql.leases import SqlDocumentLeases
from adapters.sql.repository import SqlStatusRepository
from domain.entities import Document, GraphEdge, GraphNode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus
from tests.contracts.repository import changed_document


def new_document(repository: SqlStatusRepository) -> Document:
    workspace = repository.add_workspace(user_id=1, name="w")
    return repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a.txt", storage_key="k", progress=Progress()
    )


def test_one_owner_holds_a_lease_until_release(database: Database) -> None:
    document = new_document(SqlStatusRepository(database.session_factory))
    leases = SqlDocumentLeases(database.session_factory)
    assert leases.acquire(document.id, "worker-a", 60)
    assert not leases.acquire(document.id, "worker-b", 60)
    assert leases.acquire(document.id, "worker-a", 60), "the holder renews its own lease"
    leases.release(document.id, "worker-b")
    assert not leases.acquire(document.id, "worker-b", 60), "only the holder releases"
    leases.release(document.id, "worker-a")
    assert leases.acquire(document.id, "worker-b", 60)
    assert leases.expired() == []


def test_a_run_out_lease_is_listed_while_processing_and_can_be_taken(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    processing, finished = new_document(repository), new_document(repository)
    changed_document(repository, processing.id, DocumentProcessingStatus.PROCESSING)
    changed_document(repository, finished.id, DocumentProcessingStatus.FAILED)
    leases = SqlDocumentLeases(database.session_factory)
    assert leases.acquire(processing.id, "gone", 0.05)
    assert leases.acquire(finished.id, "gone", 0.05)
    time.sleep(0.3)
    assert leases.expired() == [processing.id], "only documents still processing"
    assert leases.acquire(processing.id, "sweeper", 60)
    assert leases.expired() == []


def test_the_graph_of_a_document_is_replaced_whole(database: Database) -> None:
    repository = SqlStatusRepository(database.session_factory)
    document, other = new_document(repository), new_document(repository)
    graph = SqlGraphStore(database.session_factory)
    assert graph.counts(document.id) == (0, 0)
    nodes = [GraphNode("InsightHub", 4), GraphNode("Status", 2), GraphNode("Worker", 1)]
    graph.replace(document.id, nodes, [GraphEdge("InsightHub", "Status", 2)])
    graph.replace(other.id, nodes[:1], [])
    assert (graph.counts(document.id), graph.counts(other.id)) == ((3, 1), (1, 0))
    graph.replace(document.id, nodes[:2], [])
    assert (graph.counts(document.id), graph.counts(other.id)) == ((2, 0), (1, 0))
