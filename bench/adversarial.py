"""Text processing on adversarial inputs: time must grow linearly with the text.

Each input is built to defeat a backtracking or re-slicing implementation (hyphenated
capitals, endless stopwords, windows whose only space sits just past the overlap). The row's
value is the time at the large size, its baseline the time at a tenth of that; linear work
keeps the ratio near 10, and the target allows 12.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from application.graph import build_graph
from application.pipeline import split_text
from bench.results import Row

BENCHMARK = "6 adversarial text"
TARGET_RATIO = 12.0
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


INPUTS: dict[str, Callable[[int], str]] = {
    "hyphenated capitals": lambda size: _repeat("A-", size),
    "stopword run": lambda size: _repeat("The ", size),
    "capitalised words": lambda size: _repeat("Status Service Worker ", size),
    "chunk windows": lambda size: _repeat(" a" + "b" * (CHUNK_SIZE - 3), size),
}


def _graph(text: str) -> None:
    build_graph(split_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP))


def _whole_text_graph(text: str) -> None:
    build_graph([text])


def _chunk(text: str) -> None:
    split_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)


WORK: dict[str, Callable[[str], None]] = {
    "graph of one text": _whole_text_graph,
    "chunk + graph": _graph,
    "chunk": _chunk,
}


def _seconds(work: Callable[[str], None], text: str, repeats: int) -> float:
    # The least CPU time of a few runs: what the work itself costs, not how long a shared
    # machine made it wait for a core or how often a neighbour evicted its cache.
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        work(text)
        times.append(time.process_time() - started)
    return min(times)


def adversarial(small: int, large: int, *, repeats: int = 7) -> list[Row]:
    """One row per (work, input): seconds at ``large`` characters against ``small``."""
    rows = []
    for work_name, work in WORK.items():
        for input_name, make in INPUTS.items():
            small_text, large_text = make(small), make(large)
            baseline = _seconds(work, small_text, repeats)
            value = _seconds(work, large_text, repeats)
            rows.append(
                Row(
                    BENCHMARK,
                    f"{work_name}: {input_name}",
                    f"s @ {large // 1000} KB",
                    value=value,
                    baseline=f"s @ {small // 1000} KB",
                    baseline_value=baseline,
                    target=f"≤ {TARGET_RATIO:g}× for {large // small}× the text",
                    target_ratio=TARGET_RATIO * (large // small) / 10,
                    lower_is_better=True,
                )
            )
    return rows
