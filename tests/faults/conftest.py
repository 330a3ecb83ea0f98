"""The fault suite takes minutes: it runs only when asked for (-m faults, as scripts/test does
after the other tests, or scripts/faults for the table)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault-injection scenarios against real processes (minutes)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="the fault suite runs with -m faults or scripts/faults")
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(skip)
