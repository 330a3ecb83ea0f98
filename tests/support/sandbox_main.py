"""Run with ``python -m``: extracts through the sandbox and prints the text and the time."""

from __future__ import annotations

import time

from adapters.processing.sandboxed_extraction import SandboxedTextExtractor

if __name__ == "__main__":
    extractor = SandboxedTextExtractor()
    print(extractor.extract(b"from a module main", "a.txt").text)
    started = time.perf_counter()
    for _ in range(20):
        extractor.extract(b"again", "a.txt")
    print(f"{(time.perf_counter() - started) / 20 * 1000:.1f} ms per extraction")
