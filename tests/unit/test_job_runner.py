from __future__ import annotations

from adapters.memory.repository import InMemoryStatusRepository
from application.jobs import JobContext, JobRunner, JobStep, StepFailed
from application.status_service import StatusService
from domain.events import DocumentStatusUpdated
from domain.progress import Progress, StepState
from domain.status import DocumentProcessingStatus as D
from tests.fakes.messaging import RecordingPublisher

PLAN = ["Parsing", "Chunking text", "Generating embeddings"]


def setup(
    plan: list[str] = PLAN,
) -> tuple[JobRunner, InMemoryStatusRepository, RecordingPublisher, int]:
    repository = InMemoryStatusRepository()
    publisher = RecordingPublisher()
    runner = JobRunner(StatusService(repository, publisher))
    document = repository.add_document(
        user_id=1,
        workspace_id=1,
        filename="a.txt",
        storage_key="k",
        progress=Progress.plan(plan),
    )
    return runner, repository, publisher, document.id


def noop(context: JobContext) -> None:
    pass


def trail(publisher: RecordingPublisher) -> list[tuple[str, str | None, int]]:
    return [
        (e.status.value, e.progress.current, e.version)
        for e in publisher.events
        if isinstance(e, DocumentStatusUpdated)
    ]


def test_each_step_is_reported_and_the_document_ends_ready() -> None:
    runner, repository, publisher, document_id = setup()

    def chunk(context: JobContext) -> None:
        context.chunk_count = 4
        context.metadata["pages"] = 2

    steps = [
        JobStep("Parsing", noop),
        JobStep("Chunking text", chunk),
        JobStep("Generating embeddings", noop),
    ]
    outcome = runner.run(document_id, steps).unwrap()
    assert trail(publisher) == [
        ("processing", "Parsing", 2),
        ("processing", "Chunking text", 3),
        ("processing", "Generating embeddings", 4),
        ("ready", None, 5),
    ]
    document = repository.get_document(document_id)
    assert document == outcome.document
    assert document.processing_status is D.READY
    assert document.chunk_count == 4
    assert document.metadata["pages"] == 2
    assert set(document.metadata["step_seconds"]) == set(PLAN)
    assert document.progress.is_complete


def test_a_failing_step_fails_the_document_with_a_readable_error() -> None:
    runner, repository, publisher, document_id = setup()

    def unreadable(context: JobContext) -> None:
        raise StepFailed("the PDF is encrypted")

    ran: list[str] = []
    steps = [
        JobStep("Parsing", unreadable),
        JobStep("Chunking text", lambda c: ran.append("x")),
        JobStep("Generating embeddings", noop),
    ]
    runner.run(document_id, steps).unwrap()
    document = repository.get_document(document_id)
    assert document is not None
    assert document.processing_status is D.FAILED
    assert document.processing_error == "Parsing failed: the PDF is encrypted"
    assert document.progress.steps[0].state is StepState.FAILED
    assert ran == []
    assert trail(publisher)[-1] == ("failed", None, 3)


def test_an_unexpected_crash_in_a_step_also_ends_failed() -> None:
    runner, repository, _, document_id = setup()

    def crash(context: JobContext) -> None:
        raise KeyError("text")

    runner.run(document_id, [JobStep("Parsing", crash)])
    document = repository.get_document(document_id)
    assert document is not None
    assert document.processing_status is D.FAILED
    assert document.processing_error is not None
    assert "Parsing failed: unexpected error (KeyError" in document.processing_error


def test_a_partial_run_leaves_the_document_processing_for_the_next_stage() -> None:
    runner, repository, _, document_id = setup()
    runner.run(document_id, [JobStep("Parsing", noop), JobStep("Chunking text", noop)]).unwrap()
    middle = repository.get_document(document_id)
    assert middle is not None
    assert middle.processing_status is D.PROCESSING
    assert middle.progress.completed_count == 2
    runner.run(document_id, [JobStep("Generating embeddings", noop)]).unwrap()
    done = repository.get_document(document_id)
    assert done is not None
    assert done.processing_status is D.READY
    assert set(done.metadata["step_seconds"]) == set(PLAN)


def test_a_redelivered_request_for_a_settled_document_does_no_work() -> None:
    runner, _repository, publisher, document_id = setup(["Parsing"])
    runner.run(document_id, [JobStep("Parsing", noop)]).unwrap()
    calls: list[int] = []
    again = runner.run(document_id, [JobStep("Parsing", lambda c: calls.append(1))]).unwrap()
    assert again.skipped
    assert calls == []
    assert len(publisher.events) == 2


def test_a_run_that_was_taken_over_stops_without_overwriting() -> None:
    runner, repository, _, document_id = setup(["Parsing", "Chunking text"])
    service = StatusService(repository, None)

    def taken_over(context: JobContext) -> None:
        # Another worker moves the document on while this one is still parsing.
        service.update_document_status(document_id, "failed", error="worker lost").unwrap()

    result = runner.run(
        document_id, [JobStep("Parsing", taken_over), JobStep("Chunking text", noop)]
    )
    assert result.is_err()
    assert "stale" in result.error
    document = repository.get_document(document_id)
    assert document is not None
    assert (document.processing_status, document.processing_error) == (D.FAILED, "worker lost")


def test_steps_outside_the_plan_and_missing_documents_are_errors() -> None:
    runner, _, _, document_id = setup(["Parsing"])
    assert "not in its plan" in runner.run(document_id, [JobStep("Dancing", noop)]).error
    assert "not found" in runner.run(999, [JobStep("Parsing", noop)]).error
