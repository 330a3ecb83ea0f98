"""The transition tables, and a property: no sequence of requests reaches an illegal state."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory.repository import InMemoryStatusRepository
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated
from domain.progress import Progress
from domain.status import (
    DOCUMENT_LIFECYCLE,
    WORKSPACE_LIFECYCLE,
    DocumentProcessingStatus,
    WorkspaceStatus,
)
from tests.fakes.messaging import RecordingPublisher

D = DocumentProcessingStatus
W = WorkspaceStatus

DOCUMENT_MOVES = {
    (D.PENDING, D.PROCESSING),
    (D.PENDING, D.FAILED),
    (D.PROCESSING, D.PROCESSING),
    (D.PROCESSING, D.READY),
    (D.PROCESSING, D.FAILED),
}
DOCUMENT_RETRIES = {(D.READY, D.PENDING), (D.FAILED, D.PENDING)}
WORKSPACE_MOVES = {(W.PROVISIONING, W.READY), (W.PROVISIONING, W.ERROR)}
WORKSPACE_RETRIES = {(W.ERROR, W.PROVISIONING)}


def test_status_values_are_the_seeds() -> None:
    assert [s.value for s in D] == ["pending", "processing", "ready", "failed"]
    assert [s.value for s in W] == ["provisioning", "ready", "error"]
    assert D("ready") is D.READY
    assert D.READY.upper() == "READY"
    assert isinstance(W.ERROR, str)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(D, D)))
def test_document_moves(current: D, target: D) -> None:
    assert DOCUMENT_LIFECYCLE.allows(current, target) == ((current, target) in DOCUMENT_MOVES)
    assert DOCUMENT_LIFECYCLE.allows(current, target, retry=True) == (
        (current, target) in DOCUMENT_RETRIES
    )


@pytest.mark.parametrize(("current", "target"), list(itertools.product(W, W)))
def test_workspace_moves(current: W, target: W) -> None:
    assert WORKSPACE_LIFECYCLE.allows(current, target) == ((current, target) in WORKSPACE_MOVES)
    assert WORKSPACE_LIFECYCLE.allows(current, target, retry=True) == (
        (current, target) in WORKSPACE_RETRIES
    )


def test_a_rejection_names_both_states() -> None:
    result = DOCUMENT_LIFECYCLE.check(D.READY, D.PROCESSING)
    assert result.is_err()
    assert "'ready'" in result.error
    assert "'processing'" in result.error


def test_sources_are_the_inverse_of_moves() -> None:
    assert DOCUMENT_LIFECYCLE.sources(D.READY) == {D.PROCESSING}
    assert DOCUMENT_LIFECYCLE.sources(D.FAILED) == {D.PENDING, D.PROCESSING}
    assert DOCUMENT_LIFECYCLE.sources(D.PENDING, retry=True) == {D.READY, D.FAILED}
    assert WORKSPACE_LIFECYCLE.sources(W.PROVISIONING, retry=True) == {W.ERROR}


requests = st.lists(st.tuples(st.sampled_from(list(D)), st.booleans()), max_size=40)


@given(requests)
def test_any_request_sequence_keeps_the_document_legal_and_versions_tight(
    sequence: list[tuple[D, bool]],
) -> None:
    repository = InMemoryStatusRepository()
    publisher = RecordingPublisher()
    service = StatusService(repository, publisher)
    document = repository.add_document(
        user_id=1, workspace_id=1, filename="a.txt", storage_key="k", progress=Progress()
    )
    state, version = document.processing_status, document.version
    for target, retry in sequence:
        result = service.update_document_status(document.id, target, retry=retry)
        if DOCUMENT_LIFECYCLE.allows(state, target, retry=retry):
            assert result.is_ok()
            assert result.unwrap().version == version + 1
            state, version = target, version + 1
        else:
            assert result.is_err()
            assert "illegal transition" in result.error
        stored = repository.get_document(document.id)
        assert stored is not None
        assert (stored.processing_status, stored.version) == (state, version)
    announced = [e for e in publisher.events if isinstance(e, DocumentStatusUpdated)]
    assert len(announced) == len(publisher.events)
    assert [e.version for e in announced] == list(range(2, version + 1))


@given(st.lists(st.tuples(st.sampled_from(list(W)), st.booleans()), max_size=30))
def test_any_request_sequence_keeps_the_workspace_legal(sequence: list[tuple[W, bool]]) -> None:
    repository = InMemoryStatusRepository()
    service = StatusService(repository, None)
    workspace = repository.add_workspace(user_id=1, name="w")
    state, version = workspace.status, workspace.version
    for target, retry in sequence:
        result = service.update_workspace_status(workspace.id, target, retry=retry)
        if WORKSPACE_LIFECYCLE.allows(state, target, retry=retry):
            assert result.unwrap().version == version + 1
            state, version = target, version + 1
        else:
            assert result.is_err()
    stored = repository.get_workspace(workspace.id)
    assert stored is not None
    assert (stored.status, stored.version) == (state, version)
