"""Each decoder of outside bytes survives a bounded coverage-guided fuzz run.

A few thousand inputs per target keeps this in the normal suite; ``FUZZ_RUNS`` raises it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.seeds import SEEDS
from tests.fuzz.targets import TARGETS

pytestmark = pytest.mark.fuzz
ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("FUZZ_RUNS", "4000"))
MAX_SECONDS = int(os.environ.get("FUZZ_SECONDS", "30"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_decoder_survives_fuzzing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index, seed in enumerate(SEEDS.get(target, ())):
        (corpus / f"seed-{index}").write_bytes(seed)
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.targets",
            target,
            f"-runs={RUNS}",
            f"-max_total_time={MAX_SECONDS}",
            "-max_len=8192",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 60,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-4000:]
    done = re.search(r"Done (\d+) runs", output)
    assert done is not None, output[-2000:]
    assert int(done.group(1)) >= min(RUNS, 500), output[-2000:]
