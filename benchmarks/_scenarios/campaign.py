"""``campaign``: a durable campaign through the SQLite journal beside plain ``send_all``.

Both run in child processes of their own (``benchmarks._campaign`` and
``benchmarks._million``), alternating within each repeat.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._common import CpuMeter, Sample, Stat, fmt_pct, fmt_rate, fmt_ratio, table
from benchmarks._harness import (
    Context,
    Scenario,
    child_command,
    heading,
    progress,
    run_child,
    spread,
)
from benchmarks._targets import Median, Target, Worst, at_least, below


async def run(ctx: Context) -> None:
    """A durable campaign through the SQLite journal beside plain ``send_all``, each in
    its own child process, alternating within each repeat."""
    count = min(ctx.campaign_rows, 20_000) if ctx.quick else ctx.campaign_rows
    mb = 2**20
    journaled, plain = ctx.stat("campaign/rate"), ctx.stat("campaign/send_all")
    peak, ratios, imports = ctx.stat("campaign/peak"), Stat(), Stat()
    timeout = 120 if ctx.quick else max(600.0, count / 1000)
    for repeat in range(ctx.repeats):
        base = await run_child(child_command("benchmarks._million", ctx, count), timeout)
        with tempfile.TemporaryDirectory(prefix="aiosms-campaign-") as directory:
            journal = str(Path(directory) / "campaign.db")
            meter = CpuMeter(ctx.server.cpu_seconds)
            meter.start()
            result = await run_child(
                child_command("benchmarks._campaign", ctx, count, "--journal", journal), timeout
            )
            server_sample = meter.stop(count, count)
        if result["ok"] != count:
            progress(f"  !! campaign: {result['ok']} accepted of {count} rows")
        sample = Sample(
            count,
            int(result["ok"]),
            float(result["seconds"]),
            float(result["client_cpu"]),
            server_sample.server_cpu,
        )
        journaled.add(sample.rate, sample)
        plain_rate = base["ok"] / base["seconds"]
        plain.add(plain_rate)
        ratios.add(sample.rate / plain_rate)
        peak.add(result["peak_rss"] / mb)
        imports.add(count / result["import_seconds"])
        progress(
            f"campaign {repeat + 1}/{ctx.repeats}: {fmt_rate(sample.rate)} msgs/s "
            f"(send_all {fmt_rate(plain_rate)}), peak RSS {result['peak_rss'] / mb:.1f} MB"
        )
    ctx.results["campaign/ratio"] = ratios
    print(
        heading(
            "campaign",
            f"Campaign.run of {count:,} rows through the SQLite journal beside "
            "Batcher.send_all, my-sms JSON, packets of 1,000, own child processes",
            ctx,
        )
    )
    print(
        table(
            [
                "campaign msgs/s",
                "min–max",
                "send_all msgs/s",
                "÷ send_all",
                "import rows/s",
                "ru_maxrss peak MB",
                "worst peak MB",
                "client CPU",
            ],
            [
                [
                    fmt_rate(journaled.median),
                    spread(journaled),
                    fmt_rate(plain.median),
                    fmt_ratio(ratios.median),
                    fmt_rate(imports.median),
                    f"{peak.median:.1f}",
                    f"{peak.high:.1f}",
                    fmt_pct(journaled.client_cpu),
                ]
            ],
        )
    )
    print(
        "\nEach packet is marked `sending` (committed, synchronous=FULL) before its request "
        "and settled after it; claims take 4 packets. The import is timed apart."
    )


SCENARIO = Scenario(
    "campaign",
    run,
    targets=(
        Target(
            "campaign, Campaign.run ÷ send_all (msgs/s)",
            Median("campaign/ratio"),
            at_least(0.5),
            "msgs/s ratio",
        ),
        Target("campaign, peak RSS MB (worst repeat)", Worst("campaign/peak"), below(200), "MB"),
    ),
)
