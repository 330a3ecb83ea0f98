"""Status changes as values: built once by StatusService, applied as is by the stores."""

from __future__ import annotations

import dataclasses

import pytest

from application.status_service import StatusService
from domain.changes import DocumentStatusChange, WorkspaceStatusChange
from domain.problems import ProblemKind
from domain.progress import Progress
from domain.status import DocumentProcessingStatus, WorkspaceStatus
from tests.fakes.repository import ChangeRecordingRepository

D = DocumentProcessingStatus
W = WorkspaceStatus


def test_a_change_is_a_frozen_slotted_value() -> None:
    change = DocumentStatusChange(document_id=1, status=D.PROCESSING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.status = D.READY  # type: ignore[misc]
    assert not hasattr(change, "__dict__")
    assert change == DocumentStatusChange(document_id=1, status=D.PROCESSING)
    assert (change.entity, change.entity_id) == ("document", 1)
    assert WorkspaceStatusChange(workspace_id=4, status=W.READY).entity == "workspace"


def test_metadata_is_copied_and_read_only() -> None:
    given = {"pages": 3}
    change = DocumentStatusChange(document_id=1, status=D.READY, metadata=given)
    given["pages"] = 99
    assert change.metadata == {"pages": 3}
    with pytest.raises(TypeError):
        change.metadata["pages"] = 5  # type: ignore[index]


def test_the_error_is_always_written_the_rest_only_when_given() -> None:
    bare = DocumentStatusChange(document_id=1, status=D.PROCESSING)
    assert bare.written() == {"processing_status": D.PROCESSING, "processing_error": None}
    progress = Progress.plan(["Parsing"])
    full = DocumentStatusChange(
        document_id=1,
        status=D.READY,
        error="w",
        chunk_count=0,
        metadata={},
        progress=progress,
    )
    assert full.written() == {
        "processing_status": D.READY,
        "processing_error": "w",
        "chunk_count": 0,
        "metadata": {},
        "progress": progress,
    }
    workspace = WorkspaceStatusChange(workspace_id=2, status=W.ERROR)
    assert workspace.written() == {"status": W.ERROR, "status_message": None}


def test_a_refusal_names_a_stale_version_first_then_an_illegal_move() -> None:
    change = DocumentStatusChange(document_id=7, status=D.PROCESSING, expected_version=2)
    assert change.refusal(D.PENDING, 2) is None
    assert change.refusal("processing", 2) is None, "a stored value reads as its status"
    stale = change.refusal(D.READY, 3)
    assert stale is not None
    assert stale.kind is ProblemKind.CONFLICT
    assert stale.message == (
        "document 7: stale write: document is at version 3, the writer expected 2"
    )
    illegal = change.refusal(D.READY, 2)
    assert illegal is not None
    assert illegal.kind is ProblemKind.CONFLICT
    assert "document 7: illegal transition" in illegal
    assert "'ready' to 'processing' directly" in illegal
    retry = WorkspaceStatusChange(workspace_id=3, status=W.PROVISIONING, retry=True)
    assert retry.sources() == frozenset({W.ERROR})
    missing = retry.not_found()
    assert (missing.kind, missing.message) == (ProblemKind.NOT_FOUND, "workspace 3 not found")


def test_the_service_builds_one_change_from_the_seed_arguments_and_hands_it_on() -> None:
    repository = ChangeRecordingRepository()
    workspace = repository.add_workspace(user_id=1, name="w")
    document = repository.add_document(
        user_id=1, workspace_id=workspace.id, filename="a", storage_key="k", progress=Progress()
    )
    service = StatusService(repository, None)
    progress = Progress.plan(["Parsing"]).begin("Parsing")
    service.update_document_status(
        document_id=document.id,
        status="processing",
        error=None,
        chunk_count=2,
        metadata={"pages": 1},
        progress=progress,
        expected_version=1,
    ).unwrap()
    service.update_workspace_status(
        workspace_id=workspace.id, status=W.ERROR, message="disk full"
    ).unwrap()
    assert repository.changes == [
        DocumentStatusChange(
            document_id=document.id,
            status=D.PROCESSING,
            chunk_count=2,
            metadata={"pages": 1},
            progress=progress,
            expected_version=1,
        ),
        WorkspaceStatusChange(workspace_id=workspace.id, status=W.ERROR, message="disk full"),
    ]


def test_an_unknown_status_is_invalid_and_reaches_no_store() -> None:
    repository = ChangeRecordingRepository()
    service = StatusService(repository, None)
    document = service.update_document_status(document_id=1, status="done")
    workspace = service.update_workspace_status(workspace_id=1, status="gone")
    for result in (document, workspace):
        assert result.is_err()
        assert result.error.kind is ProblemKind.INVALID
        assert "unknown" in result.error
    assert repository.changes == []


def test_refusals_reach_the_caller_as_the_store_gave_them() -> None:
    repository = ChangeRecordingRepository()
    service = StatusService(repository, None)
    missing = service.update_document_status(document_id=404, status="processing")
    assert missing.is_err()
    assert (missing.error.kind, missing.error.message) == (
        ProblemKind.NOT_FOUND,
        "document 404 not found",
    )
    workspace = repository.add_workspace(user_id=1, name="w")
    illegal = service.update_workspace_status(workspace_id=workspace.id, status="provisioning")
    assert illegal.is_err()
    assert illegal.error.kind is ProblemKind.CONFLICT
    assert f"workspace {workspace.id}: illegal transition" in illegal.error
