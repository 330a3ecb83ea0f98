"""The persistence contracts: one base class per port, subclassed per implementation.

A subclass provides the ``repository`` fixture (a fresh, empty ``StatusRepository``); the
settings and chunk contracts also get it, to create the workspaces and documents they hang
from. The transition tests are driven from the lifecycle tables in ``domain/status.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from domain.entities import Chunk, Document, RagConfig, Workspace
from domain.errors import TransitionRejected
from domain.ports import RagConfigs, StatusRepository
from domain.ports.processing import ChunkIndex
from domain.progress import Progress
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
        moved = repository.update_document_status(document.id, step)
        assert moved is not None
        document = moved
    assert document.processing_status is status
    return document


def workspace_at(repository: StatusRepository, status: WorkspaceStatus) -> Workspace:
    workspace = new_workspace(repository)
    for step in WORKSPACE_PATHS[status]:
        moved = repository.update_workspace_status(workspace.id, step)
        assert moved is not None
        workspace = moved
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

    def test_ids_are_distinct(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        ids = {new_document(repository, workspace, f"{n}.txt").id for n in range(5)}
        assert len(ids) == 5

    def test_missing_entities_read_and_update_as_none(self, repository: StatusRepository) -> None:
        assert repository.get_document(999_999) is None
        assert repository.get_workspace(999_999) is None
        assert repository.update_document_status(999_999, D.PROCESSING) is None
        assert repository.update_document_status(999_999, D.PENDING, retry=True) is None
        assert repository.update_workspace_status(999_999, W.READY, expected_version=1) is None

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
            try:
                after = repository.update_document_status(before.id, target, retry=retry)
            except TransitionRejected as rejected:
                if legal:
                    wrong.append(f"{current.value}->{target.value} retry={retry}: {rejected}")
                elif repository.get_document(before.id) != before:
                    wrong.append(f"{current.value}->{target.value}: rejected but changed")
                continue
            if not legal:
                wrong.append(f"{current.value}->{target.value} retry={retry} got through")
            elif after is None or (after.processing_status, after.version) != (
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
            try:
                after = repository.update_workspace_status(before.id, target, retry=retry)
            except TransitionRejected as rejected:
                if legal:
                    wrong.append(f"{current.value}->{target.value} retry={retry}: {rejected}")
                elif repository.get_workspace(before.id) != before:
                    wrong.append(f"{current.value}->{target.value}: rejected but changed")
                continue
            if not legal:
                wrong.append(f"{current.value}->{target.value} retry={retry} got through")
            elif after is None or (after.status, after.version) != (target, before.version + 1):
                wrong.append(f"{current.value}->{target.value}: stored {after}")
        assert wrong == []

    def test_a_rejection_names_the_move(self, repository: StatusRepository) -> None:
        document = document_at(repository, new_workspace(repository), D.READY)
        with pytest.raises(TransitionRejected, match="'ready' to 'processing'"):
            repository.update_document_status(document.id, D.PROCESSING)

    def test_only_a_retry_reopens_a_finished_document_or_failed_workspace(
        self, repository: StatusRepository
    ) -> None:
        workspace = new_workspace(repository)
        for finished in (D.READY, D.FAILED):
            document = document_at(repository, workspace, finished)
            with pytest.raises(TransitionRejected, match="directly"):
                repository.update_document_status(document.id, D.PENDING)
            reopened = repository.update_document_status(
                document.id, D.PENDING, progress=document.progress.reset(), retry=True
            )
            assert reopened is not None
            assert (reopened.processing_status, reopened.version) == (
                D.PENDING,
                document.version + 1,
            )
            assert reopened.progress == Progress.plan(PLAN)
        pending = new_document(repository, workspace)
        with pytest.raises(TransitionRejected, match="by retry"):
            repository.update_document_status(pending.id, D.PENDING, retry=True)
        errored = workspace_at(repository, W.ERROR)
        with pytest.raises(TransitionRejected):
            repository.update_workspace_status(errored.id, W.PROVISIONING)
        again = repository.update_workspace_status(errored.id, W.PROVISIONING, retry=True)
        assert again is not None
        assert (again.status, again.version) == (W.PROVISIONING, errored.version + 1)

    def test_every_change_adds_exactly_one_to_the_version(
        self, repository: StatusRepository
    ) -> None:
        document = new_document(repository, new_workspace(repository))
        versions = [document.version]
        progress = document.progress
        for label in PLAN:
            progress = progress.begin(label)
            moved = repository.update_document_status(document.id, D.PROCESSING, progress=progress)
            assert moved is not None
            versions.append(moved.version)
        done = repository.update_document_status(document.id, D.READY)
        assert done is not None
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
        with pytest.raises(TransitionRejected, match="stale") as caught:
            repository.update_document_status(document.id, D.READY, expected_version=1)
        assert "version 2" in str(caught.value)
        assert repository.get_document(document.id) == document
        moved = repository.update_document_status(document.id, D.READY, expected_version=2)
        assert moved is not None
        assert moved.version == 3
        workspace = new_workspace(repository)
        with pytest.raises(TransitionRejected, match="stale"):
            repository.update_workspace_status(workspace.id, W.READY, expected_version=5)
        ready = repository.update_workspace_status(workspace.id, W.READY, expected_version=1)
        assert ready is not None
        assert ready.version == 2

    def test_a_stale_version_is_reported_before_an_illegal_move(
        self, repository: StatusRepository
    ) -> None:
        document = document_at(repository, new_workspace(repository), D.READY)
        with pytest.raises(TransitionRejected, match="stale"):
            repository.update_document_status(document.id, D.PROCESSING, expected_version=1)

    def test_error_is_always_written_the_rest_only_when_given(
        self, repository: StatusRepository
    ) -> None:
        document = new_document(repository, new_workspace(repository))
        progress = document.progress.begin("Parsing")
        metadata: dict[str, Any] = {"pages": 3, "nested": {"k": [1, 2.5, None, "x"]}}
        first = repository.update_document_status(
            document.id,
            D.PROCESSING,
            error="a warning",
            chunk_count=4,
            metadata=metadata,
            progress=progress,
        )
        assert first is not None
        assert first.processing_error == "a warning"
        assert (first.chunk_count, dict(first.metadata), first.progress) == (4, metadata, progress)
        second = repository.update_document_status(document.id, D.PROCESSING)
        assert second is not None
        assert second.processing_error is None, "error is always written, even as None"
        assert (second.chunk_count, dict(second.metadata), second.progress) == (
            4,
            metadata,
            progress,
        )
        failed = repository.update_document_status(
            document.id, D.FAILED, error="Parsing: unreadable", progress=progress.fail("Parsing")
        )
        assert failed is not None
        assert failed.processing_error == "Parsing: unreadable"
        assert repository.get_document(document.id) == failed
        cleared = repository.update_document_status(
            document.id, D.PENDING, chunk_count=0, metadata={}, retry=True
        )
        assert cleared is not None
        assert (cleared.processing_error, cleared.chunk_count, dict(cleared.metadata)) == (
            None,
            0,
            {},
        )

    def test_workspace_message_is_always_written(self, repository: StatusRepository) -> None:
        workspace = new_workspace(repository)
        errored = repository.update_workspace_status(workspace.id, W.ERROR, message="disk full")
        assert errored is not None
        assert errored.status_message == "disk full"
        retried = repository.update_workspace_status(workspace.id, W.PROVISIONING, retry=True)
        assert retried is not None
        assert retried.status_message is None
        assert repository.get_workspace(workspace.id) == retried

    def test_changes_keep_what_they_do_not_touch(self, repository: StatusRepository) -> None:
        document = new_document(repository, new_workspace(repository), "keep.md")
        moved = repository.update_document_status(document.id, D.PROCESSING)
        assert moved is not None
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
            repository.update_document_status(document.id, D.PROCESSING),
            repository.update_workspace_status(workspace.id, W.READY),
            repository.update_document_status(other.id, D.FAILED, error="bad"),
            repository.update_document_status(document.id, D.PROCESSING),
        ):
            assert moved is not None
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
        with pytest.raises(TransitionRejected):
            repository.update_document_status(document.id, D.PROCESSING)
        with pytest.raises(TransitionRejected):
            repository.update_document_status(document.id, D.PENDING, expected_version=1)
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
