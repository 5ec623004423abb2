"""The benchmark suite runs end to end: ``python -m benchmarks --quick`` (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADERS = (
    "### ceiling —",
    "### fanout —",
    "### packets —",
    "### p50 —",
    "### callers —",
    "### million —",
    "### campaign —",
    "### latency50 —",
    "### latency —",
    "### targets —",
)


def _chosen(*argv: str) -> list[str]:
    """The scenario names ``python -m benchmarks ARGV`` would run, without running them."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from benchmarks.__main__ import parse_args; "
            "print(*(s.name for s in parse_args(sys.argv[1:]).scenarios))",
            *argv,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


# A quick run takes ~15 s on a quiet machine; the margin is for a machine shared with
# other test suites.
@pytest.mark.timeout(240)
def test_quick_benchmark_run_exits_cleanly_and_prints_every_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for header in HEADERS:
        assert header in done.stdout, f"{header!r} missing from:\n{done.stdout[-3000:]}"


def test_only_latency_runs_the_concurrency_sweep_alone() -> None:
    assert _chosen("--only", "latency") == ["latency"]


def test_inflight_is_still_accepted_as_the_sweeps_former_name() -> None:
    assert _chosen("--only", "inflight,p50") == ["p50", "latency"]


def test_fleet_runs_only_when_named_because_it_needs_postgresql() -> None:
    assert _chosen("--only", "fleet,p50") == ["p50", "fleet"]


def test_every_scenario_but_fleet_runs_when_none_is_chosen() -> None:
    assert _chosen() == [
        "ceiling",
        "fanout",
        "packets",
        "p50",
        "callers",
        "million",
        "campaign",
        "latency50",
        "latency",
    ]


def test_an_unknown_scenario_is_refused_before_anything_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nosuch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown scenario(s): nosuch" in done.stderr


@pytest.mark.timeout(120)
def test_targets_of_scenarios_not_run_say_so_and_no_slow_gateway_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "ceiling"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    targets = done.stdout.split("### targets —", 1)[1]
    lines = [line for line in targets.splitlines() if line.startswith("| ") and "---" not in line]
    # The header, then the fanout, packets, p50, million, campaign, latency50, latency and
    # fleet targets: none of them ran.
    assert len(lines) == 1 + 23
    assert all("| not run " in line for line in lines[1:])
    assert "server (latency 50 ms)" not in done.stdout
