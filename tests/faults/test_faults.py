"""Every fault scenario on every selected transport: nothing lost, every view equals the database.

Selected with ``-m faults``; ``FAULT_TRANSPORTS`` (default ``rabbitmq``) lists the transports.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.harness import TRANSPORTS
from tests.faults.scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]


def selected_transports() -> list[str]:
    chosen = os.environ.get("FAULT_TRANSPORTS", "rabbitmq").split(",")
    unknown = [t for t in chosen if t not in TRANSPORTS]
    if unknown:
        raise ValueError(f"FAULT_TRANSPORTS: unknown transport(s) {unknown}; use {TRANSPORTS}")
    return chosen


@pytest.mark.timeout(240)
@pytest.mark.parametrize("transport", selected_transports())
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_nothing_is_lost_and_every_view_converges(scenario: Scenario, transport: str) -> None:
    figures = scenario(transport)
    assert figures.lost == 0, figures
    assert figures.published == figures.committed, figures
    assert figures.converged, figures
    # Where a scenario measures resume, every reconnection resumed (no snapshot).
    assert figures.holds, figures
