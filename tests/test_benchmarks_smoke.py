"""The benchmark suite runs end to end: ``python -m benchmarks --quick`` (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADERS = (
    "### ceiling",
    "### fanout",
    "### packets",
    "### latency —",
    "### callers",
    "### million",
    "### campaign",
    "### latency50",
    "### targets",
)


@pytest.mark.timeout(90)
def test_quick_benchmark_run_exits_cleanly_and_prints_every_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for header in HEADERS:
        assert header in done.stdout, f"{header!r} missing from:\n{done.stdout[-3000:]}"
