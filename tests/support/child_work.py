"""Extractors that misbehave on purpose, for the sandbox's tests to run in child processes.

They live in a module of their own, importable by name, because a child receives its work
pickled: by reference to a module-level class or function.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from domain.ports.processing import ExtractedText, TextExtractor


class SpinningExtractor(TextExtractor):
    """Burns CPU for ever, like a parser caught in a pathological input."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        n = 0
        while True:
            n += 1


class HoardingExtractor(TextExtractor):
    """Keeps allocating memory, 16 MB at a time, without end."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))


class HangingExtractor(TextExtractor):
    """Waits for ever without using CPU, like a read that never returns."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        time.sleep(3600)
        raise AssertionError("unreachable")


class HangingWithHelperExtractor(TextExtractor):
    """Starts a helper process, writes its pid to ``pid_file``, then hangs (or crashes)."""

    def __init__(self, pid_file: Path, *, crash: bool = False) -> None:
        self.pid_file = pid_file
        self.crash = crash

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        self.pid_file.write_text(str(helper.pid))
        if self.crash:
            os.abort()
        time.sleep(3600)
        raise AssertionError("unreachable")


class AbortingExtractor(TextExtractor):
    """Dies the way a crashing native library does."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        os.abort()


class FailingExtractor(TextExtractor):
    """Raises an error nobody expected."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        raise RuntimeError("parser bug\nwith a second line")


class OverpromisingExtractor(TextExtractor):
    """Returns more than the caps allow, ignoring them."""

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        return ExtractedText("x" * 100, pages=100)
