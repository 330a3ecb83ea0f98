"""The worker loop: ack after success, retry with growing waits after failure."""

from __future__ import annotations

from adapters.memory.broker import InMemoryBroker
from application.worker import Worker, exponential_backoff
from domain.events import Event, WorkspaceCreated


def created(n: int) -> WorkspaceCreated:
    return WorkspaceCreated(workspace_id=n, user_id=1, name="w", version=1)


def test_a_failing_handler_is_retried_with_growing_waits_then_dead_lettered() -> None:
    broker = InMemoryBroker(max_deliveries=3)
    queue = broker.work_queue("provisioning", ["workspace.created"])
    broker.publisher().publish(created(1))
    waits: list[int] = []

    def always_down(event: Event) -> None:
        raise ConnectionError("database unreachable")

    def record_wait(attempt: int) -> float:
        waits.append(attempt)
        return 0.0

    worker = Worker(queue, {"workspace.created": always_down}, retry_backoff=record_wait)
    while worker.run_once(timeout=0.2):
        pass
    assert waits == [1, 2, 3]
    assert worker.handled == 0
    (dead,) = broker.dead_letters().of("provisioning")
    assert "database unreachable" in dead.reason


def test_work_that_succeeds_after_a_failure_is_acknowledged_once() -> None:
    broker = InMemoryBroker(max_deliveries=5)
    queue = broker.work_queue("provisioning", ["workspace.created"])
    broker.publisher().publish(created(2))
    calls: list[int] = []

    def flaky(event: Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("briefly down")

    worker = Worker(queue, {"workspace.created": flaky}, retry_backoff=lambda attempt: 0.0)
    while worker.run_once(timeout=0.2):
        pass
    assert len(calls) == 2
    assert worker.handled == 1
    assert broker.dead_letters().of("provisioning") == []


def test_the_default_backoff_outlasts_a_short_outage() -> None:
    assert [exponential_backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 15, 15]
    assert sum(exponential_backoff(n) for n in range(1, 5)) >= 10
