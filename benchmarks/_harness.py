"""The harness every scenario runs in: its context, timed rows, child processes, headings.

A scenario is a record (``Scenario``): its name, the coroutine that measures and prints
its table, the fake gateways it needs and its targets as data. The harness knows how
to time a row (warm-up, calibration, repeats interleaved across rows) and where the
results go; it knows nothing of any one scenario.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

import aiosms
from benchmarks._common import CpuMeter, Sample, SendFn, Stat, fmt_rate
from benchmarks._million import LAUNCHER
from benchmarks._server import ROOT, ServerProcess

if TYPE_CHECKING:
    from benchmarks._targets import Target

#: Opens one measured client and yields its ``send(start, count)``.
Opener = Callable[[], AbstractAsyncContextManager[SendFn]]

#: One measurement aims at this many seconds (its count comes from a warm-up's rate).
TARGET_SECONDS = 1.5
#: A calibration probe must last this long before its rate is trusted.
PROBE_SECONDS = 0.25
#: Seconds the slow fake gateway waits before each reply (``latency50``, ``latency``).
LATENCY50 = 0.05
#: Rows of the ``campaign`` scenario unless ``--campaign-rows`` says otherwise.
CAMPAIGN_ROWS = 1_000_000


@dataclass
class Context:
    """What a run shares: options, the fake gateways, the messages, and every result."""

    quick: bool
    repeats: int
    #: The fake gateway servers by their reply latency in seconds (0.0 is always there).
    servers: dict[float, ServerProcess]
    pool: list[aiosms.Message]
    campaign_rows: int = CAMPAIGN_ROWS
    #: Every row's statistics by "scenario/row/parameter", for the targets.
    results: dict[str, Stat] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def server(self) -> ServerProcess:
        """The fake gateway that answers at once."""
        return self.servers[0.0]

    def stat(self, key: str) -> Stat:
        return self.results.setdefault(key, Stat())

    def median(self, key: str) -> float | None:
        stat = self.results.get(key)
        return stat.median if stat and stat.samples else None


@dataclass(frozen=True)
class Scenario:
    """One scenario: ``run`` measures its rows and prints its table.

    ``latencies``: the reply latencies (seconds) of the extra fake gateways it needs
    beside the one that answers at once. ``targets``: what the report checks, as data.
    ``aliases``: older names ``--only`` still accepts. ``named_only``: run only when
    ``--only`` names it (it needs more than this machine's Python, e.g. PostgreSQL).
    """

    name: str
    run: Callable[[Context], Awaitable[None]]
    targets: tuple[Target, ...] = ()
    latencies: tuple[float, ...] = ()
    aliases: tuple[str, ...] = ()
    named_only: bool = False


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def spread(stat: Stat) -> str:
    return f"{fmt_rate(stat.low)}–{fmt_rate(stat.high)}"


def heading(name: str, what: str, ctx: Context) -> str:
    return f"\n### {name} — {what} (median of {ctx.repeats} [min–max])\n"


async def measure(
    opener: Opener,
    server: ServerProcess,
    *,
    warmup: int,
    count: int | None,
    low: int,
    high: int,
    label: str,
) -> tuple[Sample, int]:
    """Warm up, then time ``count`` items (or as many as fill ``TARGET_SECONDS``).

    Without a count, probes of growing size (each also warming up) run until one
    lasts long enough to give a steady rate; the count is that rate's worth of
    ``TARGET_SECONDS``, within ``low`` and ``high``.
    """
    meter = CpuMeter(server.cpu_seconds)
    async with opener() as send:
        if warmup:
            await send(0, warmup)
        start = warmup
        if count is None:
            probe = max(1, low // 2)
            while True:
                started = time.perf_counter()
                await send(start, probe)
                elapsed = time.perf_counter() - started
                start += probe
                if elapsed >= PROBE_SECONDS or probe >= high:
                    break
                probe = min(high, probe * max(2, min(20, int(PROBE_SECONDS / max(elapsed, 1e-3)))))
            count = max(low, min(high, int(probe / elapsed * TARGET_SECONDS)))
        meter.start()
        ok = await send(start, count)
        sample = meter.stop(count, ok)
    if ok == 0:
        raise RuntimeError(f"{label}: not one of {count} messages was accepted; see the log")
    if ok != count:
        progress(f"  !! {label}: {count - ok} of {count} not accepted")
    return sample, count


async def run_rows(
    ctx: Context,
    scenario: str,
    rows: list[tuple[str, Opener]],
    *,
    server: ServerProcess | None = None,
    warmup: int,
    fixed: dict[str, int] | None = None,
    low: int,
    high: int,
    unit: str,
) -> None:
    """Measure every row ``repeats`` times, interleaved; keep the rate per row."""
    counts: dict[str, int] = dict(fixed or {})
    for repeat in range(ctx.repeats):
        for key, opener in rows:
            sample, counts[key] = await measure(
                opener,
                server or ctx.server,
                warmup=warmup,
                count=counts.get(key),
                low=low,
                high=high,
                label=key,
            )
            ctx.stat(f"{scenario}/{key}").add(sample.rate, sample)
            progress(
                f"{scenario} {repeat + 1}/{ctx.repeats} {key}: {fmt_rate(sample.rate)} {unit} "
                f"({sample.ok} in {sample.seconds:.2f} s)"
            )


def child_command(module: str, ctx: Context, count: int, *extra: str) -> list[str]:
    """A child process of ``module`` sending ``count`` messages in my-sms packets of
    1,000 to the fast gateway, started from a bare ``python -S`` (so the harness's own
    memory does not leak into its peak) and stopping when the harness is gone."""
    return [
        sys.executable,
        "-S",
        "-c",
        LAUNCHER,
        sys.executable,
        "-m",
        module,
        "--base-url",
        ctx.server.url,
        "--count",
        str(count),
        "--packet",
        "1000",
        "--watch-stdin",
        *extra,
    ]


async def run_child(command: list[str], timeout: float) -> dict[str, Any]:
    """Run a child of ``child_command`` and return the JSON line it ends with."""
    with anyio.fail_after(timeout):
        done = await anyio.run_process(
            command, check=False, stdin=subprocess.PIPE, stderr=None, cwd=ROOT
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command[6]} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result
