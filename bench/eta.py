"""Benchmark 7: how close the announced time left is to the time a document really took.

A mixed corpus (text, Markdown, HTML and PDF of several sizes, in a fixed shuffled order) goes
through in-process workers on the memory transport, one document at a time, so that the time
left is the document's own. At every step start the estimate its status event carried is
recorded with the moment it was heard; the actual time left is from then until the event that
made the document ready. Reported: the median absolute error in seconds and as a share of the
actual time left, and how many step starts had an estimate at all (the first documents cannot:
nothing has finished yet, and no estimate is better than a made-up one).
"""

from __future__ import annotations

import functools
import random
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.results import Row

ETA_USER_ID = 4_500_000
# Sizes of prose, in words, and page counts of PDFs: from a note to a long report.
TEXT_WORDS = (200, 2_000, 10_000, 40_000, 120_000)
PDF_PAGES = (1, 5, 20, 60)


@dataclass(frozen=True)
class Sample:
    """One step start: the estimate announced then and the time that really was left."""

    filename: str
    size_bytes: int
    step: str
    estimate: float | None
    actual: float
    # The document's first step start: its estimate is of the whole document.
    first: bool


def mixed_corpus(count: int, *, seed: int = 7) -> list[tuple[str, bytes]]:
    """``count`` documents of several types and sizes, the same every run."""
    from tests.support.corpus import pdf_with_pages, prose

    kinds: list[tuple[str, bytes]] = []
    for number, words in enumerate(TEXT_WORDS):
        text = prose(words, seed=number)
        kinds.append((f"notes-{words}.txt", text.encode()))
        kinds.append((f"readme-{words}.md", f"# Part {number}\n\n{text}".encode()))
        kinds.append((f"page-{words}.html", f"<html><body><p>{text}</p></body></html>".encode()))
    for pages in PDF_PAGES:
        lines = [[prose(12, seed=page * 31 + line) for line in range(40)] for page in range(pages)]
        kinds.append((f"report-{pages}p.pdf", pdf_with_pages(lines)))
    rng = random.Random(seed)
    chosen = [kinds[n % len(kinds)] for n in range(count)]
    rng.shuffle(chosen)
    return chosen


def eta(count: int, log: Any) -> list[Row]:
    """Run ``count`` documents and report the estimates' error."""
    from adapters.bootstrap import bootstrap
    from bench.services import BENCH_UPLOADS_PER_MINUTE
    from domain.events import DocumentStatusUpdated, StatusEvent
    from domain.result import Err
    from entrypoints.runtime import WORKER_KINDS, start_worker_threads

    services = bootstrap(
        {
            "DATABASE_URL": "memory://",
            "TRANSPORT": "memory",
            "UPLOADS_PER_MINUTE": BENCH_UPLOADS_PER_MINUTE,
        }
    )
    heard: list[tuple[float, DocumentStatusUpdated]] = []
    settled = threading.Condition()

    def listen(event: StatusEvent) -> None:
        if isinstance(event, DocumentStatusUpdated):
            with settled:
                heard.append((time.monotonic(), event))
                settled.notify_all()

    subscription = services.broker.subscribe_status(listen)
    stop = threading.Event()
    threads = start_worker_threads(services, WORKER_KINDS, stop, poll_seconds=0.05)
    samples: list[Sample] = []
    try:
        created = services.workspaces.create(user_id=ETA_USER_ID, name="eta corpus")
        if isinstance(created, Err):
            raise RuntimeError(f"workspace refused: {created.error}")
        workspace_id = created.value.id
        _wait(settled, lambda: _is_ready(services.repository.get_workspace(workspace_id)))
        for filename, content in mixed_corpus(count):
            uploaded = services.documents.upload(
                user_id=ETA_USER_ID, workspace_id=workspace_id, filename=filename, content=[content]
            )
            if isinstance(uploaded, Err):
                raise RuntimeError(f"upload refused: {uploaded.error}")
            document_id = uploaded.value.id
            # Until the event that settles it is heard: the trail must end with it.
            trail = _wait(settled, functools.partial(_settled_trail, heard, document_id))
            samples += _samples_of(filename, len(content), trail)
            if trail[-1][1].status.value != "ready":
                log(f"  {filename}: {trail[-1][1].status.value}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        subscription.close()
        services.close()
    return _rows(samples, count, log)


def _wait(condition: threading.Condition, found: Any, timeout: float = 300) -> Any:
    """What ``found`` returns, once it returns something (it is asked under ``condition``)."""
    deadline = time.monotonic() + timeout
    with condition:
        while not (answer := found()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing settled after {timeout} s")
            condition.wait(0.05)
        return answer


def _is_ready(workspace: Any) -> bool:
    return workspace is not None and workspace.status.value == "ready"


def _settled_trail(heard: list[tuple[float, Any]], document_id: int) -> list[tuple[float, Any]]:
    trail = [(at, event) for at, event in heard if event.document_id == document_id]
    settled = trail and trail[-1][1].status.value in {"ready", "failed"}
    return trail if settled else []


def _samples_of(filename: str, size: int, trail: list[tuple[float, Any]]) -> list[Sample]:
    ready = [at for at, event in trail if event.status.value == "ready"]
    if not ready:
        return []
    found: list[Sample] = []
    seen: set[str] = set()
    for at, event in trail:
        step = event.progress.current
        if event.status.value != "processing" or step is None or step in seen:
            continue
        seen.add(step)
        actual = ready[-1] - at
        found.append(Sample(filename, size, step, event.eta_seconds, actual, first=not found))
    return found


def _errors(samples: list[Sample]) -> tuple[list[float], list[float]]:
    """Absolute errors (s) and, where the actual time left is not nothing, relative ones."""
    pairs = [(s.estimate, s.actual) for s in samples if s.estimate is not None]
    absolute = [abs(estimate - actual) for estimate, actual in pairs]
    # Under 10 ms left (the end of the last step) any estimate is "wrong" by a huge share.
    relative = [abs(estimate - actual) / actual for estimate, actual in pairs if actual >= 0.01]
    return absolute, relative


def _rows(samples: list[Sample], count: int, log: Any) -> list[Row]:
    errors, shares = _errors(samples)
    whole_errors, whole_shares = _errors([s for s in samples if s.first])
    estimated = [s for s in samples if s.estimate is not None]
    coverage = len(estimated) / len(samples) if samples else 0.0
    case = f"{count} mixed documents, memory transport"
    if not errors:
        return [Row("7 eta", case, "median absolute error (s)", note="not measured: no estimate")]
    median_actual = statistics.median(s.actual for s in estimated)
    log(
        f"  median |error| {statistics.median(errors):.3f} s over {len(errors)} step starts "
        f"(median actual {median_actual:.3f} s, {coverage:.0%} had an estimate)"
    )
    extra = {
        "step_starts": len(samples),
        "with_estimate": len(estimated),
        "median_actual_seconds": median_actual,
        "p90_error_seconds": statistics.quantiles(errors, n=10)[-1] if len(errors) > 1 else None,
    }

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    every, whole = "every step start", "whole document (first step start)"
    return [
        Row(
            "7 eta",
            f"{case}, {every}",
            "median absolute error (s)",
            median(errors),
            lower_is_better=True,
            extra=extra,
        ),
        Row(
            "7 eta",
            f"{case}, {every}",
            "median relative error",
            median(shares),
            lower_is_better=True,
        ),
        Row(
            "7 eta",
            f"{case}, {whole}",
            "median absolute error (s)",
            median(whole_errors),
            lower_is_better=True,
        ),
        Row(
            "7 eta",
            f"{case}, {whole}",
            "median relative error",
            median(whole_shares),
            lower_is_better=True,
        ),
        Row("7 eta", case, "step starts with an estimate", coverage),
    ]
