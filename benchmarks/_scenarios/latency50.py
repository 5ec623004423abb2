"""``latency50``: 1000sms ``push_msg`` requests/s with 50 ms of gateway latency, Batcher rows.

The fraction of the ideal N / latency that the Batcher reaches at 10 and 50 in
flight, beside plain httpx and hand-written aiohttp.
"""

from __future__ import annotations

import math

from benchmarks import _baselines as base
from benchmarks._common import fmt_pct, fmt_rate, table
from benchmarks._drivers import (
    BATCHER_AIOHTTP,
    BATCHER_HTTPX,
    HAND_AIOHTTP,
    PLAIN_HTTPX,
    Transport,
    aiosms_batcher,
    thousandsms,
)
from benchmarks._harness import LATENCY50, Context, Opener, Scenario, heading, run_rows, spread
from benchmarks._targets import Median, Target, at_least

LATENCY50_CONCURRENCY = (10, 50)


async def run(ctx: Context) -> None:
    server = ctx.servers[LATENCY50]
    url = server.url
    pool = ctx.pool
    names = (BATCHER_AIOHTTP, BATCHER_HTTPX, HAND_AIOHTTP, PLAIN_HTTPX)

    def opener(name: str, c: int) -> Opener:
        if name == PLAIN_HTTPX:
            return lambda: base.httpx_fanout(f"{url}/", c)
        if name == HAND_AIOHTTP:
            return lambda: base.aiohttp_fanout(f"{url}/", c)
        transport: Transport = "aiohttp" if name == BATCHER_AIOHTTP else None
        return lambda: aiosms_batcher(thousandsms(url, c, transport), pool, max_concurrency=c)

    rows: list[tuple[str, Opener]] = [
        (f"{name}/{c}", opener(name, c)) for c in LATENCY50_CONCURRENCY for name in names
    ]
    # The count comes from the warm-up's rate (about two seconds' worth, at most two
    # seconds at the ideal rate): a row far below the ideal must not take minutes.
    fixed = {key: int(key.rsplit("/", 1)[1]) * 4 for key, _ in rows} if ctx.quick else None
    await run_rows(
        ctx,
        "latency50",
        rows,
        server=server,
        warmup=10 if ctx.quick else 2 * max(LATENCY50_CONCURRENCY),
        fixed=fixed,
        low=100,
        high=math.ceil(max(LATENCY50_CONCURRENCY) / LATENCY50 * 2.0),
        unit="req/s",
    )
    table_rows = []
    for name in names:
        for c in LATENCY50_CONCURRENCY:
            stat = ctx.results[f"latency50/{name}/{c}"]
            ideal = c / LATENCY50
            table_rows.append(
                [
                    name,
                    str(c),
                    fmt_rate(stat.median),
                    spread(stat),
                    fmt_rate(ideal),
                    f"{stat.median / ideal * 100:.0f}%",
                    fmt_pct(stat.client_cpu),
                ]
            )
    print(
        heading(
            "latency50",
            f"1000sms push_msg requests/s with {LATENCY50 * 1000:.0f} ms gateway latency",
            ctx,
        )
    )
    print(
        table(
            [
                "variant",
                "concurrency",
                "req/s",
                "min–max",
                "ideal N/0.05",
                "of ideal",
                "client CPU",
            ],
            table_rows,
        )
    )


SCENARIO = Scenario(
    "latency50",
    run,
    latencies=(LATENCY50,),
    targets=(
        Target(
            f"latency50 c=50, {BATCHER_AIOHTTP} req/s",
            Median(f"latency50/{BATCHER_AIOHTTP}/50"),
            at_least(900, digits=0),
            "req/s",
        ),
        Target(
            f"latency50 c=50, {BATCHER_HTTPX} req/s",
            Median(f"latency50/{BATCHER_HTTPX}/50"),
            None,
            "req/s",
        ),
    ),
)
