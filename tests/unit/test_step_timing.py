"""Step timestamps in progress, the ETA estimator, and the ETA the runner announces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.repository import InMemoryStatusRepository
from adapters.memory.timings import InMemoryStepTimings
from application.eta import EtaEstimator, StepModel
from application.jobs import JobContext, JobRunner, JobStep
from application.status_service import StatusService
from domain.errors import MalformedMessage
from domain.events import DocumentStatusUpdated, decode, encode
from domain.ports import StepTimings
from domain.progress import Progress, StepState
from domain.status import DocumentProcessingStatus as D
from domain.timing import ETA_KEY, SIZE_KEY, TimedRun, announced_eta
from tests.fakes.messaging import RecordingPublisher

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PLAN = ["Parsing", "Chunking text"]


class FakeClock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class FakeTimings(StepTimings):
    def __init__(self, runs: list[TimedRun]) -> None:
        self.runs = runs
        self.reads = 0

    def recent(self, limit: int) -> list[TimedRun]:
        self.reads += 1
        return self.runs[:limit]


# ---- progress timestamps --------------------------------------------------------------------


def test_begin_and_complete_record_their_times_and_the_step_its_duration() -> None:
    progress = Progress.plan(PLAN).begin("Parsing", at=START)
    progress = progress.complete("Parsing", at=START + timedelta(seconds=2.5))
    step = progress.step("Parsing")
    assert (step.started_at, step.finished_at) == (START, START + timedelta(seconds=2.5))
    assert step.seconds == 2.5
    assert progress.step("Chunking text").seconds is None


def test_timestamps_round_trip_through_json_and_old_progress_still_decodes() -> None:
    progress = Progress.plan(PLAN).begin("Parsing", at=START).fail("Parsing", at=START)
    shown = progress.to_json()
    assert shown[0]["started_at"] == START.isoformat()
    assert shown[0]["finished_at"] == START.isoformat()
    assert "started_at" not in shown[1]  # unknown stays absent, as before
    assert Progress.from_json(shown) == progress
    old = Progress.from_json([{"label": "Parsing", "completed": True}])
    assert old.steps[0].state is StepState.COMPLETED
    assert old.steps[0].started_at is None


def test_a_step_begun_again_forgets_its_old_end_and_a_reset_forgets_both() -> None:
    progress = Progress.plan(PLAN).begin("Parsing", at=START).fail("Parsing", at=START)
    again = progress.begin("Parsing", at=START + timedelta(seconds=9))
    assert again.step("Parsing").finished_at is None
    assert again.reset().step("Parsing").started_at is None


def test_a_timestamp_that_is_not_text_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="started_at"):
        Progress.from_json([{"label": "Parsing", "started_at": 5}])


# ---- the estimator --------------------------------------------------------------------------


def runs(*pairs: tuple[int, dict[str, float]]) -> list[TimedRun]:
    return [TimedRun(size, seconds) for size, seconds in pairs]


def test_no_history_means_no_estimate() -> None:
    estimator = EtaEstimator(FakeTimings([]), now=FakeClock())
    assert estimator.remaining(Progress.plan(PLAN), size_bytes=1000) is None


def test_a_step_without_history_means_no_estimate_for_the_document() -> None:
    timings = FakeTimings(runs((1000, {"Parsing": 1.0})))
    estimator = EtaEstimator(timings, now=FakeClock())
    assert estimator.remaining(Progress.plan(PLAN), size_bytes=1000) is None
    assert estimator.remaining(Progress.plan(["Parsing"]), size_bytes=1000) == 1.0


def test_an_unknown_size_means_no_estimate() -> None:
    timings = FakeTimings(runs((1000, {"Parsing": 1.0})))
    assert EtaEstimator(timings).remaining(Progress.plan(["Parsing"]), size_bytes=None) is None


def test_durations_scale_with_the_document_size() -> None:
    # Each step: 1 s fixed plus 1 ms per byte.
    history = runs(
        (1000, {"Parsing": 2.0, "Chunking text": 1.0}),
        (3000, {"Parsing": 4.0, "Chunking text": 3.0}),
        (2000, {"Parsing": 3.0, "Chunking text": 2.0}),
    )
    estimator = EtaEstimator(FakeTimings(history), now=FakeClock())
    assert estimator.remaining(Progress.plan(PLAN), size_bytes=5000) == pytest.approx(6.0 + 5.0)
    assert estimator.remaining(Progress.plan(PLAN), size_bytes=0) == pytest.approx(1.0)


def test_one_size_seen_scales_with_the_square_root_of_the_size_ratio() -> None:
    estimator = EtaEstimator(FakeTimings(runs((1000, {"Parsing": 2.0}))), now=FakeClock())
    plan = Progress.plan(["Parsing"])
    assert estimator.remaining(plan, size_bytes=4000) == 4.0
    assert estimator.remaining(plan, size_bytes=1000) == 2.0
    # 600 times larger: neither as fast as the small file nor 600 times slower.
    assert estimator.remaining(plan, size_bytes=600_000) == pytest.approx(2.0 * 600**0.5, abs=1e-3)


def test_one_slow_run_moves_the_fit_no_more_than_any_other() -> None:
    # 1 s fixed plus 1 ms per byte, and one run taken on a busy machine (ten times slower).
    clean = [(size, 1.0 + size / 1000) for size in (1000, 2000, 3000, 4000, 5000)]
    model = StepModel.fit([*clean, (3000, 40.0)])
    assert model.seconds(10_000) == pytest.approx(11.0, rel=0.05)
    assert model.seconds(0) == pytest.approx(1.0, rel=0.05)


def test_completed_steps_count_nothing_and_a_running_step_its_remainder() -> None:
    clock = FakeClock()
    history = runs((1000, {"Parsing": 10.0, "Chunking text": 4.0}))
    estimator = EtaEstimator(FakeTimings(history), now=clock)
    progress = Progress.plan(PLAN).begin("Parsing", at=START)
    clock.advance(3)
    assert estimator.remaining(progress, size_bytes=1000) == 7.0 + 4.0
    clock.advance(30)  # overdue: still running, so a little is left, never a negative number
    assert estimator.remaining(progress, size_bytes=1000) == 0.2 + 4.0
    done = progress.complete("Parsing", at=clock()).begin("Chunking text", at=clock())
    assert estimator.remaining(done, size_bytes=1000) == 4.0


def test_each_step_keeps_only_its_latest_runs_and_history_is_reread_after_a_while() -> None:
    clock = FakeClock()
    timings = FakeTimings(runs((1000, {"Parsing": 1.0}), (1000, {"Parsing": 1.0})))
    timings.runs += runs(*[(1000, {"Parsing": 100.0})] * 5)  # older, outside the window
    estimator = EtaEstimator(timings, now=clock, window=2, refresh_seconds=5)
    plan = Progress.plan(["Parsing"])
    assert estimator.remaining(plan, size_bytes=1000) == 1.0
    timings.runs = runs((1000, {"Parsing": 8.0}))
    clock.advance(1)
    assert estimator.remaining(plan, size_bytes=1000) == 1.0
    clock.advance(5)
    assert estimator.remaining(plan, size_bytes=1000) == 8.0
    assert timings.reads == 2


def test_larger_documents_that_were_not_slower_give_the_median() -> None:
    model = StepModel.fit([(1000, 5.0), (9000, 1.0), (5000, 2.0)])
    assert model.seconds(100_000) == 2.0


def test_a_finished_documents_metadata_gives_its_run_and_odd_metadata_none() -> None:
    found = TimedRun.from_metadata({SIZE_KEY: 10, "step_seconds": {"Parsing": 0.5, "x": "?"}})
    assert found == TimedRun(10, {"Parsing": 0.5})
    assert TimedRun.from_metadata({"step_seconds": {"Parsing": 0.5}}) is None
    assert TimedRun.from_metadata({SIZE_KEY: True, "step_seconds": {"Parsing": 0.5}}) is None


# ---- the runner announces it ----------------------------------------------------------------


def add_document(repository: InMemoryStatusRepository, size: int) -> int:
    return repository.add_document(
        user_id=1,
        workspace_id=1,
        filename="a.txt",
        storage_key="k",
        progress=Progress.plan(PLAN),
        metadata={SIZE_KEY: size},
    ).id


def noop(context: JobContext) -> None:
    pass


def test_the_runner_records_step_times_and_announces_an_eta_once_history_exists() -> None:
    repository = InMemoryStatusRepository()
    publisher = RecordingPublisher()
    clock = FakeClock()
    runner = JobRunner(
        StatusService(repository, publisher),
        clock=lambda: clock().timestamp(),
        estimator=EtaEstimator(InMemoryStepTimings(repository), now=clock, refresh_seconds=0),
        now=clock,
    )
    steps = [
        JobStep("Parsing", lambda context: clock.advance(3)),
        JobStep("Chunking text", lambda context: clock.advance(1)),
    ]

    first = add_document(repository, 1000)
    runner.run(first, steps).unwrap()
    finished = repository.get_document(first)
    assert finished is not None
    assert finished.metadata[SIZE_KEY] == 1000
    assert finished.metadata["step_seconds"] == {"Parsing": 3.0, "Chunking text": 1.0}
    parsing, chunking = finished.progress.steps
    assert (parsing.started_at, parsing.finished_at) == (START, START + timedelta(seconds=3))
    assert chunking.seconds == 1.0
    assert ETA_KEY not in finished.metadata
    assert announced_eta(finished) is None
    events = [e for e in publisher.events if isinstance(e, DocumentStatusUpdated)]
    assert [e.eta_seconds for e in events] == [None, None, None]  # no history yet

    publisher.events.clear()
    # One size seen so far: four times the size is announced as twice the time.
    second = add_document(repository, 4000)
    runner.run(second, steps).unwrap()
    announced = [e for e in publisher.events if isinstance(e, DocumentStatusUpdated)]
    assert [(e.status, e.eta_seconds) for e in announced] == [
        (D.PROCESSING, 6.0 + 2.0),
        (D.PROCESSING, 2.0),
        (D.READY, None),
    ]
    while_running = repository.get_document(second)
    assert while_running is not None
    assert announced_eta(while_running) is None


def test_a_retry_keeps_the_upload_size_but_not_the_old_estimate() -> None:
    repository = InMemoryStatusRepository()
    runner = JobRunner(StatusService(repository, None))
    document_id = add_document(repository, 1234)

    def fails(context: JobContext) -> None:
        raise RuntimeError("boom")

    runner.run(document_id, [JobStep("Parsing", fails)]).unwrap()
    StatusService(repository, None).update_document_status(document_id, D.PENDING, retry=True)
    runner.run(document_id, [JobStep("Parsing", noop)]).unwrap()
    document = repository.get_document(document_id)
    assert document is not None
    assert document.metadata[SIZE_KEY] == 1234


# ---- the event field ------------------------------------------------------------------------


def processing_event(eta_seconds: float) -> DocumentStatusUpdated:
    return DocumentStatusUpdated(
        document_id=1,
        user_id=1,
        workspace_id=1,
        filename="a.txt",
        status=D.PROCESSING,
        error=None,
        chunk_count=0,
        metadata={},
        progress=Progress.plan(PLAN),
        version=2,
        eta_seconds=eta_seconds,
    )


def test_eta_seconds_round_trips_and_events_without_it_decode() -> None:
    event = processing_event(41.5)
    decoded = decode(encode(event))
    assert isinstance(decoded, DocumentStatusUpdated)
    assert decoded.eta_seconds == 41.5
    body = encode(event).replace(b',"eta_seconds":41.5', b"")
    assert b"eta_seconds" not in body
    old = decode(body)
    assert isinstance(old, DocumentStatusUpdated)
    assert old.eta_seconds is None
    whole = decode(encode(event).replace(b'"eta_seconds":41.5', b'"eta_seconds":40'))
    assert isinstance(whole, DocumentStatusUpdated)
    assert whole.eta_seconds == 40.0


@pytest.mark.parametrize("bad", [b'"soon"', b"-1", b"true", b"1e400"])
def test_an_eta_that_is_not_a_sensible_number_is_malformed(bad: bytes) -> None:
    body = encode(processing_event(1.0)).replace(b'"eta_seconds":1.0', b'"eta_seconds":' + bad)
    with pytest.raises(MalformedMessage, match="eta_seconds"):
        decode(body)


def test_a_step_expected_to_be_quicker_than_the_floor_is_not_inflated() -> None:
    clock = FakeClock()
    estimator = EtaEstimator(FakeTimings(runs((1000, {"Parsing": 0.01}))), now=clock)
    running = Progress.plan(["Parsing"]).begin("Parsing", at=START)
    assert estimator.remaining(running, size_bytes=1000) == 0.01
    clock.advance(1)
    assert estimator.remaining(running, size_bytes=1000) == 0.01


def test_a_step_without_history_is_looked_for_again_sooner() -> None:
    clock = FakeClock()
    timings = FakeTimings([])
    estimator = EtaEstimator(timings, now=clock, refresh_seconds=5)
    plan = Progress.plan(["Parsing"])
    assert estimator.remaining(plan, size_bytes=1000) is None
    timings.runs = runs((1000, {"Parsing": 2.0}))
    clock.advance(0.6)  # a tenth of the refresh interval, not all of it
    assert estimator.remaining(plan, size_bytes=1000) == 2.0


def test_with_step_times_a_step_counts_the_wait_before_it() -> None:
    later = START + timedelta(seconds=1)
    progress = Progress.plan(PLAN).begin("Parsing", at=START).complete("Parsing", at=later)
    # The next stage's worker took the document 4 s after parsing ended; chunking took 2 s.
    progress = progress.begin("Chunking text", at=later + timedelta(seconds=4))
    progress = progress.complete("Chunking text", at=later + timedelta(seconds=6))
    metadata = {SIZE_KEY: 10, "step_seconds": {"Parsing": 1.0, "Chunking text": 2.0}}
    assert TimedRun.from_metadata(metadata, progress) == TimedRun(
        10, {"Parsing": 1.0, "Chunking text": 6.0}
    )
    untimed = Progress.plan(PLAN)
    own = {"Parsing": 1.0, "Chunking text": 2.0}
    assert TimedRun.from_metadata(metadata, untimed) == TimedRun(10, own)
