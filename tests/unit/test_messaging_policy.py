"""The policy every transport shares: backoff and retry-once, status hand-over, closing."""

from __future__ import annotations

import logging

import pytest

from adapters.backoff import Backoff, retry_once
from adapters.messaging import Opened, deliver_status
from domain.events import (
    DocumentUploaded,
    StatusEvent,
    WorkspaceStatusUpdated,
    encode,
    is_status_routing_key,
)
from domain.ports import DeadLetter
from domain.status import WorkspaceStatus


def test_backoff_doubles_up_to_its_maximum_jittered_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=0.4)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, ceiling in zip(delays, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_backoff_refuses_settings_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0, maximum=1)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=2, maximum=1)


def test_retry_once_runs_again_after_a_transient_failure() -> None:
    calls: list[int] = []
    heard: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("link lost")
        return "done"

    result = retry_once(
        flaky,
        transient=(ConnectionError,),
        backoff=Backoff(initial=0.001, maximum=0.001),
        on_transient=lambda _error, attempt: heard.append(attempt),
    )
    assert result == "done"
    assert len(calls) == 2
    assert heard == [1]


def test_retry_once_gives_up_after_the_second_failure() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError(f"attempt {len(calls)}")

    with pytest.raises(ConnectionError, match="attempt 2"):
        retry_once(down, transient=(ConnectionError,), backoff=Backoff(0.001, 0.001))
    assert len(calls) == 2


def test_retry_once_never_retries_an_answer() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        retry_once(refused, transient=(ConnectionError,), backoff=Backoff(0.001, 0.001))
    assert calls == [1]


@pytest.mark.parametrize(
    ("routing_key", "expected"),
    [
        ("document.status.updated", True),
        ("workspace.status.updated", True),
        ("secret.status.updated", True),
        ("document.uploaded", False),
        (".status.updated", False),
        ("a.b.status.updated", False),
        ("status.updated", False),
    ],
)
def test_status_routing_keys_are_told_apart_one_way(routing_key: str, expected: bool) -> None:
    assert is_status_routing_key(routing_key) is expected


def _workspace_status() -> WorkspaceStatusUpdated:
    return WorkspaceStatusUpdated(
        workspace_id=1, user_id=2, name="w", status=WorkspaceStatus.READY, message=None, version=1
    )


def test_a_status_body_reaches_the_listener_and_bad_ones_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[StatusEvent] = []
    status = _workspace_status()
    with caplog.at_level(logging.WARNING):
        deliver_status(b"{not json", heard.append)
        deliver_status(
            encode(
                DocumentUploaded(
                    document_id=1, user_id=1, workspace_id=1, file_path="/f", version=1
                )
            ),
            heard.append,
        )
        deliver_status(encode(status), heard.append)
    assert heard == [status]
    assert "malformed status message" in caplog.text
    assert "document.uploaded event sent as a status event" in caplog.text


def test_a_failing_listener_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: StatusEvent) -> None:
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR):
        deliver_status(encode(_workspace_status()), broken)
    assert "status listener failed" in caplog.text


class _Thing:
    def __init__(self, fails: bool = False) -> None:
        self.closed = False
        self.fails = fails

    def close(self) -> None:
        self.closed = True
        if self.fails:
            raise OSError("already gone")


def test_closing_what_was_opened_closes_every_thing_despite_a_failure() -> None:
    opened = Opened()
    first, failing, forgotten, last = _Thing(), _Thing(fails=True), _Thing(), _Thing()
    for thing in (first, failing, forgotten, last):
        opened.track(thing)
    opened.forget(forgotten)
    opened.close_all()
    assert (first.closed, failing.closed, forgotten.closed, last.closed) == (
        True,
        True,
        False,
        True,
    )


def test_a_dead_letter_shows_its_event_or_none_for_a_malformed_body() -> None:
    event = DocumentUploaded(document_id=3, user_id=1, workspace_id=1, file_path="/f", version=1)
    good = DeadLetter(
        letter_id="1",
        queue="ingestion",
        routing_key=event.routing_key,
        body=encode(event),
        reason="failed",
    )
    bad = DeadLetter(
        letter_id="2", queue="ingestion", routing_key=event.routing_key, body=b"\xff", reason="x"
    )
    assert good.event == event
    assert bad.event is None
