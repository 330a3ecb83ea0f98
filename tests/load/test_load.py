"""1,000 sockets while workers process a sustained stream: bounded memory, nothing missed."""

from __future__ import annotations

import pytest

from tests.load.run import run_load

pytestmark = [pytest.mark.load, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_every_socket_gets_every_event_and_memory_stays_bounded() -> None:
    summary = run_load()
    report = "\n".join(summary.lines())
    assert summary.missed_events == 0, report
    assert summary.sockets_closed == 0, report
    assert summary.sockets_differing == 0, report
    assert summary.holds, report
