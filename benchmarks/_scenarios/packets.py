"""``packets``: my-sms send messages/s in POST packets of 1, 100 and 1,000, JSON and XML.

``Batcher.send_all`` and ``MySms.send_many`` beside hand-packed httpx code, every row
with the same requests in flight (aiosms's default).
"""

from __future__ import annotations

from typing import Literal

from benchmarks import _baselines as base
from benchmarks._common import fmt_pct, fmt_rate, fmt_ratio, ratio, table
from benchmarks._drivers import (
    HAND_PACKED,
    PACKET_BATCHER,
    PACKET_CONCURRENCY,
    PACKET_SEND_MANY,
    aiosms_batcher,
    aiosms_send_many,
    mysms,
)
from benchmarks._harness import Context, Opener, Scenario, heading, run_rows, spread
from benchmarks._targets import Median, Ratio, Target, at_least

PACKET_SIZES = (1, 100, 1000)


async def run(ctx: Context) -> None:
    url = ctx.server.url
    pool = ctx.pool
    c = PACKET_CONCURRENCY
    rows: list[tuple[str, Opener]] = []
    formats: tuple[Literal["json", "xml"], ...] = ("json", "xml")
    names = (HAND_PACKED, PACKET_BATCHER, PACKET_SEND_MANY)

    def opener(name: str, fmt: Literal["json", "xml"], size: int) -> Opener:
        if name == HAND_PACKED:
            return lambda: base.httpx_packets(url, fmt, size, c)
        if name == PACKET_BATCHER:
            return lambda: aiosms_batcher(mysms(url, fmt, c, None), pool, max_batch_size=size)
        return lambda: aiosms_send_many(mysms(url, fmt, c, None, packet_size=size), pool)

    for fmt in formats:
        for size in PACKET_SIZES:
            rows += [(f"{fmt}/{size}/{name}", opener(name, fmt, size)) for name in names]
    fixed = None
    if ctx.quick:
        fixed = {key: max(40, int(key.split("/")[1]) * 2) for key, _ in rows}
    await run_rows(
        ctx,
        "packets",
        rows,
        warmup=0 if ctx.quick else 1000,
        fixed=fixed,
        low=1000,
        high=400_000,
        unit="msgs/s",
    )
    table_rows = []
    for fmt in formats:
        for size in PACKET_SIZES:
            hand = ctx.median(f"packets/{fmt}/{size}/{HAND_PACKED}")
            for name in names:
                stat = ctx.results[f"packets/{fmt}/{size}/{name}"]
                table_rows.append(
                    [
                        fmt.upper(),
                        f"{size:,}",
                        name,
                        fmt_rate(stat.median),
                        spread(stat),
                        fmt_ratio(ratio(stat.median, hand)),
                        fmt_pct(stat.client_cpu),
                        fmt_pct(stat.server_cpu),
                    ]
                )
    print(
        heading(
            "packets",
            f"my-sms send messages/s, POST packets, {c} requests in flight",
            ctx,
        )
    )
    print(
        table(
            [
                "format",
                "packet",
                "variant",
                "msgs/s",
                "min–max",
                "÷ hand-packed",
                "client CPU",
                "server CPU",
            ],
            table_rows,
        )
    )


SCENARIO = Scenario(
    "packets",
    run,
    targets=tuple(
        Target(
            f"packets {fmt.upper()} 1,000, send_all ÷ hand-packed",
            Ratio(
                Median(f"packets/{fmt}/1000/{PACKET_BATCHER}"),
                Median(f"packets/{fmt}/1000/{HAND_PACKED}"),
            ),
            at_least(goal),
            "msgs/s ratio",
        )
        for fmt, goal in (("json", 0.35), ("xml", 0.6))
    ),
)
