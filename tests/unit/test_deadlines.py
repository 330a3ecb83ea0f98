"""Step deadlines, the stop token, and the lease guard that stops renewing a late step."""

from __future__ import annotations

import pickle
import threading

import pytest

from application.deadlines import (
    DeadlineGuardedLeases,
    DeadlinePolicy,
    StepDeadline,
    StepDeadlines,
    checkpoint,
    current_deadline,
    run_with_deadline,
)
from application.graph import build_graph
from domain.limits import Limit, StepLimitExceeded, StepStopped
from domain.ports import DocumentLeases


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingLeases(DocumentLeases):
    """Leases of one store: who holds what, and every acquire that reached the store."""

    def __init__(self) -> None:
        self.held: dict[int, str] = {}
        self.acquired: list[int] = []

    def acquire(self, document_id: int, owner: str, seconds: float) -> bool:
        self.acquired.append(document_id)
        self.held[document_id] = owner
        return True

    def release(self, document_id: int, owner: str) -> None:
        self.held.pop(document_id, None)

    def expired(self, limit: int = 100) -> list[int]:
        return []


def test_limits_and_their_errors_name_the_step_and_the_bound() -> None:
    assert str(StepLimitExceeded("Parsing", Limit.deadline(300))) == (
        "Parsing exceeded its deadline of 300 s"
    )
    assert str(Limit.cpu_time(2.5)) == "CPU-time limit of 2.5 s"
    assert str(Limit.characters(5_000_000)) == "text limit of 5,000,000 characters"
    error = pickle.loads(pickle.dumps(StepLimitExceeded("text extraction", Limit.memory(64))))
    assert (error.step, error.limit, str(error)) == (
        "text extraction",
        Limit.memory(64),
        "text extraction exceeded its memory limit of 64 MB",
    )
    stopped = pickle.loads(pickle.dumps(StepStopped("Parsing")))
    assert str(stopped) == "Parsing was stopped on request"


def test_a_deadline_counts_down_and_then_fails_the_check() -> None:
    clock = FakeClock()
    deadline = StepDeadline("Parsing", 10, clock=clock)
    clock.now += 4
    assert deadline.remaining() == 6
    deadline.check()
    clock.now += 6
    assert deadline.expired
    assert deadline.remaining() == 0
    with pytest.raises(StepLimitExceeded, match="Parsing exceeded its deadline of 10 s"):
        deadline.check()


def test_stop_wakes_every_listener_once_and_later_listeners_at_once() -> None:
    deadline = StepDeadline("Building graph", 60)
    calls: list[str] = []
    deadline.on_stop(lambda: calls.append("first"))
    forget = deadline.on_stop(lambda: calls.append("forgotten"))
    forget()
    deadline.stop()
    deadline.stop()
    deadline.on_stop(lambda: calls.append("late"))
    assert calls == ["first", "late"]
    with pytest.raises(StepStopped, match="Building graph was stopped"):
        deadline.check()


def test_run_with_deadline_returns_an_in_time_result_and_fails_a_late_one() -> None:
    clock = FakeClock()
    in_time = StepDeadline("Parsing", 10, clock=clock)
    assert run_with_deadline(in_time, current_deadline) is in_time
    assert current_deadline() is None

    late = StepDeadline("Parsing", 10, clock=clock)

    def slow() -> str:
        clock.now += 11
        return "too late"

    with pytest.raises(StepLimitExceeded, match="deadline of 10 s"):
        run_with_deadline(late, slow)
    assert current_deadline() is None


def test_checkpoint_stops_a_cooperative_loop_past_its_deadline() -> None:
    clock = FakeClock()
    deadline = StepDeadline("Building graph", 5, clock=clock)
    done: list[int] = []

    def loop() -> None:
        for n in range(100):
            checkpoint()
            done.append(n)
            clock.now += 1

    with pytest.raises(StepLimitExceeded, match="Building graph exceeded its deadline of 5 s"):
        run_with_deadline(deadline, loop)
    assert done == [0, 1, 2, 3, 4]
    checkpoint()  # outside any step: nothing to check


def test_a_stop_from_another_thread_ends_a_cooperative_step() -> None:
    deadlines = StepDeadlines(DeadlinePolicy(default_seconds=60))
    started = threading.Event()

    def step() -> None:
        started.set()
        while True:
            checkpoint()
            threading.Event().wait(0.01)

    stopper = threading.Thread(target=lambda: started.wait(5) and deadlines.stop(7))
    stopper.start()
    with pytest.raises(StepStopped):
        deadlines.run(7, "Building graph", step)
    stopper.join()
    assert deadlines.running(7) is None
    assert deadlines.stop(7) is False


def test_policy_gives_overrides_by_step_and_refuses_nonsense() -> None:
    policy = DeadlinePolicy(default_seconds=120, per_step={"Building graph": 30})
    assert policy.seconds_for("Parsing") == 120
    assert policy.start("Building graph").seconds == 30
    with pytest.raises(ValueError, match="positive"):
        DeadlinePolicy(default_seconds=0)
    with pytest.raises(ValueError, match="Parsing"):
        DeadlinePolicy(per_step={"Parsing": -1})


def test_the_lease_is_renewed_during_a_step_but_not_past_its_deadline() -> None:
    clock = FakeClock()
    store = RecordingLeases()
    deadlines = StepDeadlines(DeadlinePolicy(default_seconds=10), clock=clock)
    leases = DeadlineGuardedLeases(store, deadlines)

    assert leases.acquire(1, "worker-a", 60)  # before any step: the first claim
    with deadlines.step(1, "Parsing"):
        clock.now += 9
        assert leases.acquire(1, "worker-a", 60)  # in time: renewed
        assert leases.acquire(2, "worker-a", 60)  # another document is not held back
        clock.now += 1
        assert not leases.acquire(1, "worker-a", 60)  # late: refused, never reaches the store
    assert store.acquired == [1, 1, 2]
    assert leases.acquire(1, "worker-a", 60)  # the step is over: the next may claim again
    leases.release(1, "worker-a")
    assert store.held == {2: "worker-a"}
    assert leases.expired() == []


def test_a_stopped_step_no_longer_renews_its_lease() -> None:
    store = RecordingLeases()
    deadlines = StepDeadlines()
    leases = DeadlineGuardedLeases(store, deadlines)
    with deadlines.step(3, "Parsing") as deadline:
        assert deadlines.stop(3)
        assert deadline.stopped
        assert not leases.acquire(3, "worker-a", 60)
    assert store.acquired == []


def test_a_step_that_hangs_past_its_deadline_loses_its_lease_to_another_worker() -> None:
    from adapters.memory.leases import InMemoryDocumentLeases
    from adapters.memory.repository import InMemoryStatusRepository
    from application.handlers import holding_lease

    store = InMemoryDocumentLeases(InMemoryStatusRepository())
    deadlines = StepDeadlines(DeadlinePolicy(default_seconds=0.3))
    leases = DeadlineGuardedLeases(store, deadlines)
    taken_in_time: list[bool] = []
    taken_late: list[bool] = []

    def hanging_step() -> None:
        # Never checks its deadline: only the lease decides whether the document is freed.
        threading.Event().wait(0.2)
        taken_in_time.append(store.acquire(5, "worker-b", 10))
        threading.Event().wait(0.8)  # past the deadline, and past the lease it last renewed
        taken_late.append(store.acquire(5, "worker-b", 10))

    with holding_lease(leases, 5, "worker-a", 0.3) as held:
        assert held
        with pytest.raises(StepLimitExceeded, match="Parsing exceeded its deadline"):
            deadlines.run(5, "Parsing", hanging_step)
    assert taken_in_time == [False]  # renewed while the step was in time
    assert taken_late == [True]  # not renewed past the deadline: another worker took it
    assert store.leases[5][0] == "worker-b"  # and the late worker's release left it alone


def test_building_a_graph_stops_between_chunks_once_its_step_is_stopped() -> None:
    deadline = StepDeadline("Building graph", 60)
    deadline.stop()
    with pytest.raises(StepStopped):
        run_with_deadline(deadline, lambda: build_graph(["Ada Lovelace met Charles Babbage."] * 3))
    # Outside a step the same text builds its graph as before.
    nodes, _ = build_graph(["Ada Lovelace met Charles Babbage."] * 3)
    assert {node.label for node in nodes} >= {"Ada Lovelace", "Charles Babbage"}
