"""The load run takes minutes: it runs only when asked for (-m load, or scripts/faults --load)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "load: the load run, 1,000 sockets for minutes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "load" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="the load run runs with -m load or scripts/faults --load")
    for item in items:
        if item.get_closest_marker("load") is not None:
            item.add_marker(skip)
