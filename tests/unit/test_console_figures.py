"""``ConsoleFigures``: one reading shared by every operator socket, latest-wins, none unwatched."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from entrypoints.server.admin import OPERATOR_FIGURES, ConsoleFigures

INTERVAL = 0.02


class Readings:
    """Figures that change when a test says so; counts how often they were read."""

    def __init__(self) -> None:
        self.depth = 0
        self.reads = 0
        self.fail = False

    def __call__(self) -> list[dict[str, Any]]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("broker unreachable")
        return [{"stage": "ingestion", "depth": self.depth}]


def depth(frame: str) -> int:
    decoded = json.loads(frame)
    assert decoded["type"] == OPERATOR_FIGURES
    value: int = decoded["stages"][0]["depth"]
    return value


def test_watchers_share_readings_get_only_changes_and_skip_to_the_latest() -> None:
    async def run() -> None:
        readings = Readings()
        figures = ConsoleFigures(readings, interval=INTERVAL)
        first, second = figures.frames(), figures.frames()
        async with contextlib.aclosing(first), contextlib.aclosing(second):
            assert depth(await anext(first)) == 0
            assert depth(await anext(second)) == 0
            assert figures.watchers == 2
            # Nothing changed: nothing is sent, however many readings go by.
            reads = readings.reads
            waiting = asyncio.ensure_future(anext(first))
            await asyncio.sleep(10 * INTERVAL)
            assert not waiting.done()
            assert readings.reads > reads
            readings.depth = 1
            assert depth(await waiting) == 1
            # The second watcher did not read meanwhile: it gets the newest, not a backlog.
            readings.depth = 2
            await asyncio.sleep(10 * INTERVAL)
            assert depth(await anext(second)) == 2
        assert figures.watchers == 0
        await asyncio.sleep(5 * INTERVAL)
        stopped = readings.reads
        await asyncio.sleep(10 * INTERVAL)
        assert readings.reads == stopped, "read on while nobody watched"

    asyncio.run(run())


def test_a_failed_reading_keeps_the_watch_and_a_new_watch_waits_for_fresh_figures() -> None:
    async def run() -> None:
        readings = Readings()
        figures = ConsoleFigures(readings, interval=INTERVAL)
        async with contextlib.aclosing(figures.frames()) as frames:
            assert depth(await anext(frames)) == 0
            readings.fail = True
            await asyncio.sleep(5 * INTERVAL)
            readings.fail, readings.depth = False, 3
            assert depth(await asyncio.wait_for(anext(frames), 5)) == 3
        readings.depth = 4
        async with contextlib.aclosing(figures.frames()) as frames:
            assert depth(await asyncio.wait_for(anext(frames), 5)) == 4

    asyncio.run(run())
