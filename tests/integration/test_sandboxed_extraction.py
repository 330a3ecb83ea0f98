"""Extraction in a limited child process: every limit fails the file, never the worker."""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter

from adapters.processing.sandbox import ChildCrashed, ChildLimits, Sandbox
from adapters.processing.sandboxed_extraction import ExtractionLimits, SandboxedTextExtractor
from application.deadlines import DeadlinePolicy, StepDeadline, StepDeadlines, run_with_deadline
from domain.limits import StepLimitExceeded, StepStopped
from domain.ports.processing import TextExtractor, UnreadableFile
from tests.support import child_work
from tests.support.corpus import pdf_with_pages


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture(autouse=True)
def no_child_is_left_behind() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []


def extractor(
    sandbox: Sandbox, inner: TextExtractor | None = None, **limits: Any
) -> SandboxedTextExtractor:
    return SandboxedTextExtractor(ExtractionLimits(**limits), inner=inner, sandbox=sandbox)


def assert_the_next_extraction_works(sandbox: Sandbox) -> None:
    extracted = SandboxedTextExtractor(sandbox=sandbox).extract(b"still working", "next.txt")
    assert (extracted.text, extracted.pages) == ("still working", 1)


def blank_pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_extracts_as_it_does_in_process(sandbox: Sandbox) -> None:
    pdf = pdf_with_pages([["First page"], ["Second page"]])
    extracted = extractor(sandbox).extract(pdf, "two.pdf")
    assert extracted.pages == 2
    assert "First page" in extracted.text
    assert "Second page" in extracted.text


def test_extraction_past_the_cpu_limit_fails_naming_it(sandbox: Sandbox) -> None:
    spinning = extractor(sandbox, child_work.SpinningExtractor(), cpu_seconds=1)
    started = time.monotonic()
    with pytest.raises(
        StepLimitExceeded, match="text extraction exceeded its CPU-time limit of 1 s"
    ):
        spinning.extract(b"an innocent looking text", "loop.txt")
    assert time.monotonic() - started < 10
    assert_the_next_extraction_works(sandbox)


def test_extraction_past_the_memory_limit_fails_naming_it(sandbox: Sandbox) -> None:
    hoarding = extractor(sandbox, child_work.HoardingExtractor(), memory_mb=400)
    with pytest.raises(
        StepLimitExceeded, match="text extraction exceeded its memory limit of 400 MB"
    ):
        hoarding.extract(b"a text", "hog.txt")
    assert_the_next_extraction_works(sandbox)


def test_a_pdf_over_the_page_cap_fails_naming_it(sandbox: Sandbox) -> None:
    with pytest.raises(
        StepLimitExceeded, match="text extraction exceeded its page limit of 3 pages"
    ):
        extractor(sandbox, max_pages=3).extract(blank_pdf(5), "long.pdf")
    assert_the_next_extraction_works(sandbox)


def test_a_text_over_the_character_cap_fails_naming_it(sandbox: Sandbox) -> None:
    capped = extractor(sandbox, max_chars=10)
    with pytest.raises(StepLimitExceeded, match="exceeded its text limit of 10 characters"):
        capped.extract(b"eleven characters and more", "long.txt")
    with pytest.raises(StepLimitExceeded, match="text limit of 10 characters"):
        capped.extract(pdf_with_pages([["short"], ["and another page"]]), "long.pdf")
    assert capped.extract(b"ten chars!", "ok.txt").text == "ten chars!"


def test_caps_hold_whatever_extractor_ran_in_the_child(sandbox: Sandbox) -> None:
    with pytest.raises(StepLimitExceeded, match="page limit of 10 pages"):
        extractor(sandbox, child_work.OverpromisingExtractor(), max_pages=10).extract(b"x", "a.txt")
    with pytest.raises(StepLimitExceeded, match="text limit of 50 characters"):
        extractor(sandbox, child_work.OverpromisingExtractor(), max_chars=50).extract(b"x", "a.txt")


def test_a_hanging_extraction_is_killed_at_its_wall_clock_limit(sandbox: Sandbox) -> None:
    hanging = extractor(sandbox, child_work.HangingExtractor(), wall_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(
        StepLimitExceeded, match=r"text extraction exceeded its time limit of 0\.5 s"
    ):
        hanging.extract(b"a text", "hang.txt")
    assert time.monotonic() - started < 2
    assert_the_next_extraction_works(sandbox)


def test_the_step_deadline_bounds_the_child_when_it_is_the_nearer(sandbox: Sandbox) -> None:
    hanging = extractor(sandbox, child_work.HangingExtractor(), wall_seconds=60)
    deadline = StepDeadline("Parsing", 0.5)
    started = time.monotonic()
    with pytest.raises(StepLimitExceeded, match=r"Parsing exceeded its deadline of 0\.5 s"):
        run_with_deadline(deadline, lambda: hanging.extract(b"a text", "hang.txt"))
    assert time.monotonic() - started < 2
    assert_the_next_extraction_works(sandbox)


def test_a_crashing_or_failing_child_makes_the_file_unreadable(sandbox: Sandbox) -> None:
    with pytest.raises(UnreadableFile, match="extraction crashed"):
        extractor(sandbox, child_work.AbortingExtractor()).extract(b"x", "a.txt")
    with pytest.raises(UnreadableFile, match="extraction crashed"):
        extractor(sandbox, child_work.FailingExtractor()).extract(b"x", "a.txt")
    assert_the_next_extraction_works(sandbox)


def test_another_thread_stops_a_running_child_well_within_two_seconds(sandbox: Sandbox) -> None:
    child = sandbox.start(
        "text extraction",
        child_work.SpinningExtractor().extract,
        b"x",
        "loop.txt",
        limits=ChildLimits(cpu_seconds=60, wall_seconds=60),
    )
    asked: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.3)
        asked.append(time.monotonic())
        child.stop()

    threading.Thread(target=stop_soon).start()
    with pytest.raises(StepStopped, match="text extraction was stopped on request"):
        child.result()
    took = time.monotonic() - asked[0]
    assert took < 0.5, f"stopping took {took:.3f} s"
    assert_the_next_extraction_works(sandbox)


def test_stopping_the_step_stops_its_child_and_what_the_child_started(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pid_file = tmp_path / "helper.pid"
    hanging = extractor(sandbox, child_work.HangingWithHelperExtractor(pid_file), wall_seconds=60)
    deadlines = StepDeadlines(DeadlinePolicy(default_seconds=60))

    def cancel_once_the_helper_runs() -> None:
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.01)
        deadlines.stop(42)

    threading.Thread(target=cancel_once_the_helper_runs).start()
    with pytest.raises(StepStopped, match="Parsing was stopped on request"):
        deadlines.run(42, "Parsing", lambda: hanging.extract(b"x", "hang.txt"))
    assert_gone(int(pid_file.read_text()))
    assert_the_next_extraction_works(sandbox)


def test_what_a_crashed_child_started_does_not_outlive_it(sandbox: Sandbox, tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    crashing = child_work.HangingWithHelperExtractor(pid_file, crash=True)
    child = sandbox.start("text extraction", crashing.extract, b"x", "a.txt", limits=ChildLimits())
    with pytest.raises(ChildCrashed, match="signal SIGABRT"):
        child.result()
    assert_gone(int(pid_file.read_text()))
    child.stop()  # a handle already settled: nothing left to stop, and no error
    assert child.pid is None


def assert_gone(pid: int) -> None:
    for _ in range(100):  # its parent, not this process, reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} outlived the child that started it")


def test_a_child_whose_parent_stops_waiting_ends_itself_past_its_limit(sandbox: Sandbox) -> None:
    child = sandbox.start(
        "text extraction",
        child_work.HangingExtractor().extract,
        b"x",
        "hang.txt",
        limits=ChildLimits(wall_seconds=0.5),
    )
    time.sleep(2.5)  # nobody waits: as if the worker had died
    started = time.monotonic()
    with pytest.raises(StepLimitExceeded, match=r"time limit of 0\.5 s"):
        child.result()
    assert time.monotonic() - started < 0.2  # it was already gone, by its own alarm


def test_a_worker_run_as_a_module_gets_clean_cheap_children() -> None:
    # A main run with -m is what the worker is; its children must not import it anew.
    ran = subprocess.run(
        [sys.executable, "-m", "tests.support.sandbox_main"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, timing = ran.stdout.splitlines()
    assert text == "from a module main"
    assert ran.stderr == ""
    assert float(timing.split()[0]) < 200  # a fork, not an interpreter start (~600 ms)
