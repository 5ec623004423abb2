"""``million``: a million messages through ``Batcher.send_all`` in a child process.

The messages come from a generator; the child reports its rate and its peak memory
(``ru_maxrss`` and Linux's ``VmHWM``), started from a bare interpreter so the
harness's own memory does not count.
"""

from __future__ import annotations

import statistics

from benchmarks._common import CpuMeter, Sample, Stat, fmt_pct, fmt_rate, table
from benchmarks._harness import (
    Context,
    Scenario,
    child_command,
    heading,
    progress,
    run_child,
    spread,
)
from benchmarks._targets import Target, Worst, below

MILLION = 1_000_000


async def run(ctx: Context) -> None:
    count = 20_000 if ctx.quick else MILLION
    command = child_command("benchmarks._million", ctx, count)
    mb = 2**20
    rate, peak = ctx.stat("million/rate"), ctx.stat("million/peak")
    baseline, hwm, baseline_hwm = Stat(), Stat(), Stat()
    seconds: list[float] = []
    for repeat in range(ctx.repeats):
        meter = CpuMeter(ctx.server.cpu_seconds)
        meter.start()
        result = await run_child(command, 60 if ctx.quick else 300)
        server_sample = meter.stop(count, count)
        if result["ok"] != count or result["received"] != count:
            progress(f"  !! million: {result['ok']} ok of {result['received']} receipts")
        sample = Sample(
            count,
            int(result["ok"]),
            float(result["seconds"]),
            float(result["client_cpu"]),
            server_sample.server_cpu,
        )
        rate.add(sample.rate, sample)
        peak.add(result["peak_rss"] / mb)
        baseline.add(result["baseline_rss"] / mb)
        if result.get("peak_hwm") is not None:
            hwm.add(result["peak_hwm"] / mb)
            baseline_hwm.add(result["baseline_hwm"] / mb)
        seconds.append(sample.seconds)
        progress(
            f"million {repeat + 1}/{ctx.repeats}: {fmt_rate(sample.rate)} msgs/s, "
            f"peak RSS {result['peak_rss'] / mb:.1f} MB "
            f"(after imports {result['baseline_rss'] / mb:.1f} MB)"
        )

    def mbs(stat: Stat) -> str:
        return f"{stat.median:.1f}" if stat.samples else "—"

    print(
        heading(
            "million",
            f"Batcher.send_all over a generator of {count:,} messages, my-sms JSON, "
            "packets of 1,000, own child process",
            ctx,
        )
    )
    print(
        table(
            [
                "msgs/s",
                "min–max",
                "seconds",
                "ru_maxrss after imports MB",
                "ru_maxrss peak MB",
                "worst peak MB",
                "VmHWM after imports / peak MB",
                "client CPU",
                "server CPU",
            ],
            [
                [
                    fmt_rate(rate.median),
                    spread(rate),
                    f"{statistics.median(seconds):.1f}",
                    mbs(baseline),
                    mbs(peak),
                    f"{peak.high:.1f}",
                    f"{mbs(baseline_hwm)} / {mbs(hwm)}",
                    fmt_pct(rate.client_cpu),
                    fmt_pct(rate.server_cpu),
                ]
            ],
        )
    )
    print(
        "\nru_maxrss of the child, which is started from a bare `python -S` so the "
        "harness's own memory does not leak into it; VmHWM (Linux) is the kernel's "
        "high-water mark of the same process, as a check."
    )


SCENARIO = Scenario(
    "million",
    run,
    targets=(
        Target(
            "million send_all, peak RSS MB (worst repeat)",
            Worst("million/peak"),
            below(150),
            "MB",
            quick_unit="MB (quick: 20,000 messages only)",
        ),
    ),
)
