"""Every fault scenario on every selected transport: nothing lost, every view equals the database.

Selected with ``-m faults``; ``FAULT_TRANSPORTS`` (default ``rabbitmq``) lists the transports.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.harness import TRANSPORTS
from tests.faults.scenarios import Scenario, in_order_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]


def selected_transports() -> list[str]:
    chosen = os.environ.get("FAULT_TRANSPORTS", "rabbitmq").split(",")
    unknown = [t for t in chosen if t not in TRANSPORTS]
    if unknown:
        raise ValueError(f"FAULT_TRANSPORTS: unknown transport(s) {unknown}; use {TRANSPORTS}")
    return chosen


def cases() -> list[object]:
    """(scenario, transport) in each transport's order (see ``in_order_for``)."""
    return [
        pytest.param(scenario, transport, id=f"{scenario.__name__}-{transport}")
        for transport in selected_transports()
        for _, scenario in in_order_for(transport)
    ]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("scenario", "transport"), cases())
def test_nothing_is_lost_and_every_view_converges(scenario: Scenario, transport: str) -> None:
    figures = scenario(transport)
    assert figures.lost == 0, figures
    assert figures.published == figures.committed, figures
    assert figures.converged, figures
    # Where a scenario measures resume, every reconnection resumed (no snapshot).
    assert figures.holds, figures
