"""The persistence contracts: one base class per port, subclassed per implementation.

A subclass provides the ``repository`` fixture (a fresh, empty ``StatusRepository``); the
settings and chunk contracts also get it, to create the workspaces and documents they hang
from. The transition tests are driven from the lifecycle tables in ``domain/status.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.entities import Chunk, Document, RagConfig, Workspace
from domain.history import HistoryEntity
from domain.ports import RagConfigs, StatusRepository
from domain.ports.processing import ChunkIndex
from domain.problems import Problem, ProblemKind
from domain.progress import Progress
from domain.result import Err
from domain.status import (
    DOCUMENT_LIFECYCLE,
    WORKSPACE_LIFECYCLE,
    DocumentProcessingStatus,
    WorkspaceStatus,
)

D = DocumentProcessingStatus
W = WorkspaceStatus
PLAN = ("Parsing", "Chunking text", "Generating embeddings")

# How a new document or workspace is brought to each status, through legal moves only.
DOCUMENT_PATHS: dict[DocumentProcessingStatus, tuple[DocumentProcessingStatus, ...]] = {
    D.PENDING: (),
    D.PROCESSING: (D.PROCESSING,),
    D.READY: (D.PROCESSING, D.READY),
    D.FAILED: (D.FAILED,),
}
WORKSPACE_PATHS: dict[WorkspaceStatus, tuple[WorkspaceStatus, ...]] = {
    W.PROVISIONING: (),
    W.READY: (W.READY,),
    W.ERROR: (W.ERROR,),
}


def changed_document(
    repository: StatusRepository, document_id: int, status: D, **fields: Any
) -> Document:
    """The document after a change the test expects to be applied."""
    return repository.update_document_status(
        DocumentStatusChange(document_id=document_id, status=status, **fields)
    ).unwrap()


def refused_document(
    repository: StatusRepository, document_id: int, status: D, **fields: Any
) -> Problem:
    """Why a change the test expects to be refused was refused."""
    result = repository.update_document_status(
        DocumentStatusChange(document_id=document_id, status=status, **fields)
    )
    assert isinstance(result, Err), f"applied: {result}"
    return result.error


def changed_workspace(
    repository: StatusRepository, workspace_id: int, status: W, **fields: Any
) -> Workspace:
    return repository.update_workspace_status(
        WorkspaceStatusChange(workspace_id=workspace_id, status=status, **fields)
    ).unwrap()


def refused_workspace(
    repository: StatusRepository, workspace_id: int, status: W, **fields: Any
) -> Problem:
    result = repository.update_workspace_status(
        WorkspaceStatusChange(workspace_id=workspace_id, status=status, **fields)
    )
    assert isinstance(result, Err), f"applied: {result}"
    return result.error


def new_workspace(repository: StatusRepository, user_id: int = 7, name: str = "w") -> Workspace:
    return repository.add_workspace(user_id=user_id, name=name)


def new_document(
    repository: StatusRepository, workspace: Workspace, filename: str = "a.txt"
) -> Document:
    return repository.add_document(
        user_id=workspace.user_id,
        workspace_id=workspace.id,
        filename=filename,
        storage_key=f"{workspace.id}/{filename}",
        progress=Progress.plan(PLAN),
    )


def document_at(
    repository: StatusRepository, workspace: Workspace, status: DocumentProcessingStatus
) -> Document:
    document = new_document(repository, workspace)
    for step in DOCUMENT_PATHS[status]:
        document = changed_document(repository, document.id, step)
    assert document.processing_status is status
    return document


def workspace_at(repository: StatusRepository, status: WorkspaceStatus) -> Workspace:
    workspace = new_workspace(repository)
    for step in WORKSPACE_PATHS[status]:
        workspace = changed_workspace(repository, workspace.id, step)
    assert workspace.status is status
    return workspace


class StatusRepositoryContract:
    """Behaviour every ``StatusRepository`` must show."""

    @pytest.fixture
    def repository(self) -> StatusRepository:
        raise NotImplementedError

    def test_a_new_workspace_is_provisioning_at_version_one(
        self, repository: StatusRepository
    ) -> None:
        workspace = repository.add_workspace(user_id=7, name="Research")
        assert (workspace.user_id, workspace.name) == (7, "Research")
        assert workspace.status is W.PROVISIONING
        assert workspace.status_message is None
        assert workspace.version == 1
        assert workspace.created_at.tzinfo is not None
        assert repository.get_workspace(workspace.id) == workspace

    def test_a_new_document_is_pending_at_version_one_with_its_plan(
        self, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        document = new_document(repository, workspace, "report.pdf")
        assert document.processing_status is D.PENDING
        assert document.processing_error is None
        assert (document.chunk_count, dict(document.metadata), document.version) == (0, {}, 1)
        assert document.progress == Progress.plan(PLAN)
        assert (document.filename, document.workspace_id) == ("report.pdf", workspace.id)
        assert repository.get_document(document.id) == document

    def test_every_creation_and_applied_change_is_kept_in_the_history(
        self, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        document = new_document(repository, workspace, "report.pdf")
        begun = changed_document(
            repository, document.id, D.PROCESSING, actor="worker-a", step="Parsing"
        )
        refused_document(repository, document.id, D.PENDING)
        failed = changed_document(
            repository,
            document.id,
            D.FAILED,
            error="Parsing failed: bad file",
            actor="worker-a",
            step="Parsing",
            step_seconds=1.25,
            expected_version=begun.version,
        )
        history = repository.history(HistoryEntity.DOCUMENT, document.id, limit=10)
        assert [(e.from_status, e.to_status, e.version) for e in history] == [
            (None, "pending", 1),
            ("pending", "processing", 2),
            ("processing", "failed", 3),
        ]
        assert [e.position for e in history] == [
            document.position,
            begun.position,
            failed.position,
        ]
        last = history[-1]
        assert (last.actor, last.step, last.step_seconds, last.error) == (
            "worker-a",
            "Parsing",
            1.25,
            "Parsing failed: bad file",
        )
        assert last.at == failed.updated_at
        assert all(e.entity_id == document.id for e in history)
        # The workspace keeps its own, apart from its documents'.
        repository.update_workspace_status(
            WorkspaceStatusChange(workspace_id=workspace.id, status=W.ERROR, message="no")
        ).unwrap()
        kept = repository.history(HistoryEntity.WORKSPACE, workspace.id, limit=10)
        assert [(e.from_status, e.to_status, e.error) for e in kept] == [
            (None, "provisioning", None),
            ("provisioning", "error", "no"),
        ]

    def test_the_history_pages_by_position(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        document = new_document(repository, workspace, "a.txt")
        for _ in range(4):
            changed_document(repository, document.id, D.PROCESSING)
        first = repository.history(HistoryEntity.DOCUMENT, document.id, limit=2)
        second = repository.history(
            HistoryEntity.DOCUMENT, document.id, limit=2, after=first[-1].position
        )
        rest = repository.history(
            HistoryEntity.DOCUMENT, document.id, limit=2, after=second[-1].position
        )
        assert [e.version for e in first + second + rest] == [1, 2, 3, 4, 5]
        # Each page's first entry still names the status it came from.
        assert second[0].from_status == "processing"
        assert repository.history(HistoryEntity.DOCUMENT, document.id + 999, limit=5) == []

    def test_ids_are_distinct(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        ids = {new_document(repository, workspace, f"{n}.txt").id for n in range(5)}
        assert len(ids) == 5

    def test_missing_entities_read_as_none_and_are_not_found_by_a_change(
        self, repository: StatusRepository
    ) -> None:
        assert repository.get_document(999_999) is None
        assert repository.get_workspace(999_999) is None
        for problem in (
            refused_document(repository, 999_999, D.PROCESSING),
            refused_document(repository, 999_999, D.PENDING, retry=True),
            refused_workspace(repository, 999_999, W.READY, expected_version=1),
        ):
            assert problem.kind is ProblemKind.NOT_FOUND
            assert "999999 not found" in problem

    def test_lists_hold_only_the_users_own_entities_oldest_first(
        self, repository: StatusRepository
    ) -> None:
        mine = [new_workspace(repository, user_id=1, name=f"m{n}") for n in range(3)]
        theirs = new_workspace(repository, user_id=2, name="t")
        first = new_document(repository, mine[0], "1.txt")
        second = new_document(repository, mine[1], "2.txt")
        third = new_document(repository, mine[0], "3.txt")
        foreign = new_document(repository, theirs, "x.txt")
        assert [w.id for w in repository.list_workspaces(user_id=1)] == [w.id for w in mine]
        assert [w.id for w in repository.list_workspaces(user_id=2)] == [theirs.id]
        assert repository.list_workspaces(user_id=3) == []
        assert [d.id for d in repository.list_documents(user_id=1)] == [
            first.id,
            second.id,
            third.id,
        ]
        assert [d.id for d in repository.list_documents(user_id=1, workspace_id=mine[0].id)] == [
            first.id,
            third.id,
        ]
        assert repository.list_documents(user_id=1, workspace_id=theirs.id) == []
        assert [d.id for d in repository.list_documents(user_id=2)] == [foreign.id]

    def test_document_moves_follow_the_lifecycle_table(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        wrong: list[str] = []
        for current, target, retry in itertools.product(D, D, (False, True)):
            before = document_at(repository, workspace, current)
            legal = DOCUMENT_LIFECYCLE.allows(current, target, retry=retry)
            result = repository.update_document_status(
                DocumentStatusChange(document_id=before.id, status=target, retry=retry)
            )
            if isinstance(result, Err):
                if legal:
                    wrong.append(f"{current.value}->{target.value} retry={retry}: {result.error}")
                elif result.error.kind is not ProblemKind.CONFLICT:
                    wrong.append(f"{current.value}->{target.value}: refused as {result.error.kind}")
                elif repository.get_document(before.id) != before:
                    wrong.append(f"{current.value}->{target.value}: rejected but changed")
                continue
            after = result.value
            if not legal:
                wrong.append(f"{current.value}->{target.value} retry={retry} got through")
            elif (after.processing_status, after.version) != (
                target,
                before.version + 1,
            ):
                wrong.append(f"{current.value}->{target.value}: stored {after}")
        assert wrong == []

    def test_workspace_moves_follow_the_lifecycle_table(self, repository: StatusRepository) -> None:
        wrong: list[str] = []
        for current, target, retry in itertools.product(W, W, (False, True)):
            before = workspace_at(repository, current)
            legal = WORKSPACE_LIFECYCLE.allows(current, target, retry=retry)
            result = repository.update_workspace_status(
                WorkspaceStatusChange(workspace_id=before.id, status=target, retry=retry)
            )
            if isinstance(result, Err):
                if legal:
                    wrong.append(f"{current.value}->{target.value} retry={retry}: {result.error}")
                elif result.error.kind is not ProblemKind.CONFLICT:
                    wrong.append(f"{current.value}->{target.value}: refused as {result.error.kind}")
                elif repository.get_workspace(before.id) != before:
                    wrong.append(f"{current.value}->{target.value}: rejected but changed")
                continue
            after = result.value
            if not legal:
                wrong.append(f"{current.value}->{target.value} retry={retry} got through")
            elif (after.status, after.version) != (target, before.version + 1):
                wrong.append(f"{current.value}->{target.value}: stored {after}")
        assert wrong == []

    def test_a_rejection_names_the_move(self, repository: StatusRepository) -> None:
        document = document_at(repository, new_workspace(repository), D.READY)
        assert "'ready' to 'processing'" in refused_document(repository, document.id, D.PROCESSING)

    def test_only_a_retry_reopens_a_finished_document_or_failed_workspace(
        self, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        for finished in (D.READY, D.FAILED):
            document = document_at(repository, workspace, finished)
            assert "directly" in refused_document(repository, document.id, D.PENDING)
            reopened = changed_document(
                repository, document.id, D.PENDING, progress=document.progress.reset(), retry=True
            )
            assert (reopened.processing_status, reopened.version) == (
                D.PENDING,
                document.version + 1,
            )
            assert reopened.progress == Progress.plan(PLAN)
        pending = new_document(repository, workspace)
        assert "by retry" in refused_document(repository, pending.id, D.PENDING, retry=True)
        errored = workspace_at(repository, W.ERROR)
        assert (
            refused_workspace(repository, errored.id, W.PROVISIONING).kind is ProblemKind.CONFLICT
        )
        again = changed_workspace(repository, errored.id, W.PROVISIONING, retry=True)
        assert (again.status, again.version) == (W.PROVISIONING, errored.version + 1)

    def test_every_change_adds_exactly_one_to_the_version(
        self, repository: StatusRepository
    ) -> None:
        document = new_document(repository, new_workspace(repository))
        versions = [document.version]
        progress = document.progress
        for label in PLAN:
            progress = progress.begin(label)
            moved = changed_document(repository, document.id, D.PROCESSING, progress=progress)
            versions.append(moved.version)
        done = changed_document(repository, document.id, D.READY)
        versions.append(done.version)
        assert versions == list(range(1, len(PLAN) + 3))
        stored = repository.get_document(document.id)
        assert stored is not None
        assert stored.version == versions[-1]

    def test_a_stale_expected_version_is_rejected_and_changes_nothing(
        self, repository: StatusRepository
    ) -> None:
        document = document_at(repository, new_workspace(repository), D.PROCESSING)
        assert document.version == 2
        stale = refused_document(repository, document.id, D.READY, expected_version=1)
        assert stale.kind is ProblemKind.CONFLICT
        assert "stale" in stale
        assert "version 2" in stale
        assert repository.get_document(document.id) == document
        moved = changed_document(repository, document.id, D.READY, expected_version=2)
        assert moved.version == 3
        workspace = new_workspace(repository)
        assert "stale" in refused_workspace(repository, workspace.id, W.READY, expected_version=5)
        ready = changed_workspace(repository, workspace.id, W.READY, expected_version=1)
        assert ready.version == 2

    def test_a_stale_version_is_reported_before_an_illegal_move(
        self, repository: StatusRepository
    ) -> None:
        document = document_at(repository, new_workspace(repository), D.READY)
        assert "stale" in refused_document(
            repository, document.id, D.PROCESSING, expected_version=1
        )

    def test_error_is_always_written_the_rest_only_when_given(
        self, repository: StatusRepository
    ) -> None:
        document = new_document(repository, new_workspace(repository))
        progress = document.progress.begin("Parsing")
        metadata: dict[str, Any] = {"pages": 3, "nested": {"k": [1, 2.5, None, "x"]}}
        first = changed_document(
            repository,
            document.id,
            D.PROCESSING,
            error="a warning",
            chunk_count=4,
            metadata=metadata,
            progress=progress,
        )
        assert first.processing_error == "a warning"
        assert (first.chunk_count, dict(first.metadata), first.progress) == (4, metadata, progress)
        second = changed_document(repository, document.id, D.PROCESSING)
        assert second.processing_error is None, "error is always written, even as None"
        assert (second.chunk_count, dict(second.metadata), second.progress) == (
            4,
            metadata,
            progress,
        )
        failed = changed_document(
            repository,
            document.id,
            D.FAILED,
            error="Parsing: unreadable",
            progress=progress.fail("Parsing"),
        )
        assert failed.processing_error == "Parsing: unreadable"
        assert repository.get_document(document.id) == failed
        cleared = changed_document(
            repository, document.id, D.PENDING, chunk_count=0, metadata={}, retry=True
        )
        assert (cleared.processing_error, cleared.chunk_count, dict(cleared.metadata)) == (
            None,
            0,
            {},
        )

    def test_workspace_message_is_always_written(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        errored = changed_workspace(repository, workspace.id, W.ERROR, message="disk full")
        assert errored.status_message == "disk full"
        retried = changed_workspace(repository, workspace.id, W.PROVISIONING, retry=True)
        assert retried.status_message is None
        assert repository.get_workspace(workspace.id) == retried

    def test_changes_keep_what_they_do_not_touch(self, repository: StatusRepository) -> None:
        document = new_document(repository, new_workspace(repository), "keep.md")
        moved = changed_document(repository, document.id, D.PROCESSING)
        assert (moved.id, moved.user_id, moved.workspace_id) == (
            document.id,
            document.user_id,
            document.workspace_id,
        )
        assert (moved.filename, moved.storage_key) == (document.filename, document.storage_key)
        assert moved.created_at == document.created_at
        assert moved.updated_at >= document.updated_at

    def test_creations_and_changes_take_ever_greater_positions_across_both_kinds(
        self, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        document = new_document(repository, workspace)
        other = new_document(repository, workspace, "b.txt")
        seen = [workspace.position, document.position, other.position]
        for moved in (
            changed_document(repository, document.id, D.PROCESSING),
            changed_workspace(repository, workspace.id, W.READY),
            changed_document(repository, other.id, D.FAILED, error="bad"),
            changed_document(repository, document.id, D.PROCESSING),
        ):
            seen.append(moved.position)
        assert seen[0] > 0
        assert seen == sorted(set(seen)), "unique and increasing in the order of the writes"
        stored_document = repository.get_document(document.id)
        stored_workspace = repository.get_workspace(workspace.id)
        assert stored_document is not None
        assert stored_workspace is not None
        assert (stored_document.position, stored_workspace.position) == (seen[6], seen[4])
        assert [d.position for d in repository.list_documents(user_id=workspace.user_id)] == [
            seen[6],
            seen[5],
        ]

    def test_a_rejected_change_keeps_the_position(self, repository: StatusRepository) -> None:
        document = document_at(repository, new_workspace(repository), D.READY)
        assert refused_document(repository, document.id, D.PROCESSING).kind is ProblemKind.CONFLICT
        assert (
            refused_document(repository, document.id, D.PENDING, expected_version=1).kind
            is ProblemKind.CONFLICT
        )
        assert repository.get_document(document.id) == document
        later = new_workspace(repository)
        assert later.position > document.position

    def test_the_epoch_is_a_stable_identity(self, repository: StatusRepository) -> None:
        epoch = repository.epoch()
        assert isinstance(epoch, str)
        assert len(epoch) >= 16
        new_workspace(repository)
        assert repository.epoch() == epoch


class RagConfigsContract:
    """Behaviour every ``RagConfigs`` must show."""

    @pytest.fixture
    def repository(self) -> StatusRepository:
        raise NotImplementedError

    @pytest.fixture
    def rag_configs(self) -> RagConfigs:
        raise NotImplementedError

    def test_nothing_is_stored_at_first(
        self, rag_configs: RagConfigs, repository: StatusRepository
    ) -> None:
        assert rag_configs.defaults_for(7) is None
        assert rag_configs.for_workspace(new_workspace(repository).id) is None

    def test_user_defaults_are_stored_replaced_and_kept_apart(
        self, rag_configs: RagConfigs
    ) -> None:
        mine = RagConfig(chunk_size=500, chunk_overlap=50, embedding_model="m1")
        rag_configs.set_defaults(1, mine)
        assert rag_configs.defaults_for(1) == mine
        assert rag_configs.defaults_for(2) is None
        replaced = RagConfig(
            chunk_size=1200, chunk_overlap=0, embedding_model="m2", graph_enabled=True
        )
        rag_configs.set_defaults(1, replaced)
        assert rag_configs.defaults_for(1) == replaced
        theirs = RagConfig(chunk_size=300, chunk_overlap=10, embedding_model="m3")
        rag_configs.set_defaults(2, theirs)
        assert (rag_configs.defaults_for(1), rag_configs.defaults_for(2)) == (replaced, theirs)

    def test_workspace_settings_are_stored_replaced_and_kept_apart(
        self, rag_configs: RagConfigs, repository: StatusRepository
    ) -> None:
        first, second = new_workspace(repository), new_workspace(repository)
        config = RagConfig(chunk_size=900, chunk_overlap=90, graph_enabled=True)
        rag_configs.save_for_workspace(first.id, config)
        assert rag_configs.for_workspace(first.id) == config
        assert rag_configs.for_workspace(second.id) is None
        changed = RagConfig(chunk_size=400, chunk_overlap=40, embedding_model="other")
        rag_configs.save_for_workspace(first.id, changed)
        assert rag_configs.for_workspace(first.id) == changed
        assert rag_configs.defaults_for(first.user_id) is None


class ChunkIndexContract:
    """Behaviour every ``ChunkIndex`` must show."""

    @pytest.fixture
    def repository(self) -> StatusRepository:
        raise NotImplementedError

    @pytest.fixture
    def chunk_index(self) -> ChunkIndex:
        raise NotImplementedError

    def test_replace_stores_and_replaces_a_documents_chunks(
        self, chunk_index: ChunkIndex, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        document, other = new_document(repository, workspace), new_document(repository, workspace)
        assert chunk_index.count(document.id) == 0
        assert chunk_index.chunks(document.id) == []
        first = [Chunk(document.id, n, f"text {n}", (0.5, -1.0, float(n))) for n in range(4)]
        chunk_index.replace(document.id, list(reversed(first)))
        chunk_index.replace(other.id, [Chunk(other.id, 0, "other", (1.0,))])
        assert (chunk_index.count(document.id), chunk_index.count(other.id)) == (4, 1)
        assert chunk_index.chunks(document.id) == first, "in position order, vectors intact"
        shorter = Chunk(document.id, 0, "shorter", (0.0, 0.25, 0.0))
        chunk_index.replace(document.id, [shorter])
        assert (chunk_index.count(document.id), chunk_index.count(other.id)) == (1, 1)
        assert chunk_index.chunks(document.id) == [shorter]
        chunk_index.replace(document.id, [])
        assert (chunk_index.count(document.id), chunk_index.count(other.id)) == (0, 1)
