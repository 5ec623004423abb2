"""``fanout``: 1000sms ``push_msg`` requests/s, one message each, at 1 to 100 in flight.

aiosms's Batcher and ``send_many`` on both transports beside plain httpx, httpx over
httpx-aiohttp and hand-written aiohttp, every pool sized to its concurrency; and with
aiosms's own default pool under more tasks.
"""

from __future__ import annotations

import aiosms
from benchmarks import _baselines as base
from benchmarks._common import fmt_pct, fmt_rate, fmt_ratio, ratio, table
from benchmarks._drivers import (
    BATCHER_AIOHTTP,
    BATCHER_HTTPX,
    BATCHER_HTTPX_DEFAULT,
    DEFAULT_POOL,
    HAND_AIOHTTP,
    HTTPX_AIOHTTP,
    PLAIN_HTTPX,
    SEND_MANY_AIOHTTP,
    SEND_MANY_HTTPX,
    SEND_MANY_HTTPX_DEFAULT,
    Transport,
    aiosms_batcher,
    aiosms_send_many,
    thousandsms,
)
from benchmarks._harness import Context, Opener, Scenario, heading, run_rows, spread
from benchmarks._targets import Best, Median, Ratio, Target, at_least

FANOUT_CONCURRENCY = (1, 10, 50, 100)


async def run(ctx: Context) -> None:
    url = ctx.server.url
    pool = ctx.pool
    names: list[str] = [PLAIN_HTTPX]
    if base.httpx_aiohttp_available():
        names.append(HTTPX_AIOHTTP)
    else:
        ctx.notes.append("httpx-aiohttp is not installed: its fan-out baseline was skipped.")
    names += [HAND_AIOHTTP, BATCHER_HTTPX, SEND_MANY_HTTPX, BATCHER_AIOHTTP, SEND_MANY_AIOHTTP]
    # What a user gets with no ``limits=``: aiosms's own pool size (10) under more tasks.
    defaults = [BATCHER_HTTPX_DEFAULT, SEND_MANY_HTTPX_DEFAULT]

    def opener(name: str, c: int) -> Opener:
        if name == PLAIN_HTTPX:
            return lambda: base.httpx_fanout(f"{url}/", c)
        if name == HTTPX_AIOHTTP:
            return lambda: base.httpx_fanout(f"{url}/", c, over_aiohttp=True)
        if name == HAND_AIOHTTP:
            return lambda: base.aiohttp_fanout(f"{url}/", c)
        transport: Transport = "aiohttp" if "aiohttp" in name else None
        sized = name not in defaults

        def client() -> aiosms.ThousandSms:
            return thousandsms(url, c, transport, sized_limits=sized)

        if "Batcher" in name:
            return lambda: aiosms_batcher(client(), pool, max_concurrency=c)
        return lambda: aiosms_send_many(client(), pool)

    plan = [(name, c) for c in FANOUT_CONCURRENCY for name in names]
    plan += [(name, c) for c in FANOUT_CONCURRENCY if c > DEFAULT_POOL for name in defaults]
    rows = [(f"{name}/{c}", opener(name, c)) for name, c in plan]
    quick = {key: 40 for key, _ in rows} if ctx.quick else None
    await run_rows(
        ctx,
        "fanout",
        rows,
        warmup=10 if ctx.quick else 200,
        fixed=quick,
        low=300,
        high=20_000,
        unit="req/s",
    )
    table_rows = []
    for name in [*names, *defaults]:
        for c in FANOUT_CONCURRENCY:
            stat = ctx.results.get(f"fanout/{name}/{c}")
            if stat is None:
                continue
            table_rows.append(
                [
                    name,
                    str(c),
                    fmt_rate(stat.median),
                    spread(stat),
                    *(
                        fmt_ratio(ratio(stat.median, ctx.median(f"fanout/{b}/{c}")))
                        for b in (PLAIN_HTTPX, HTTPX_AIOHTTP, HAND_AIOHTTP)
                    ),
                    fmt_pct(stat.client_cpu),
                    fmt_pct(stat.server_cpu),
                ]
            )
    print(heading("fanout", "1000sms push_msg requests/s, one message each", ctx))
    print(
        table(
            [
                "variant",
                "concurrency",
                "req/s",
                "min–max",
                "÷ plain httpx",
                "÷ httpx-aiohttp",
                "÷ hand aiohttp",
                "client CPU",
                "server CPU",
            ],
            table_rows,
        )
    )
    print(
        "\nEvery row's pool is sized to its concurrency (max_connections = N), except the "
        f"'default limits' rows: aiosms's own pool of {DEFAULT_POOL} connections under N tasks."
    )


_PLAIN_BEST = Best(f"fanout/{PLAIN_HTTPX}", FANOUT_CONCURRENCY)

SCENARIO = Scenario(
    "fanout",
    run,
    targets=(
        *(
            Target(
                f"fanout c=50, {row} ÷ plain httpx at its best (c={{at}})",
                Ratio(Median(f"fanout/{row}/50"), _PLAIN_BEST),
                at_least(0.9),
                "req/s ratio",
            )
            for row in (
                BATCHER_HTTPX,
                SEND_MANY_HTTPX,
                BATCHER_HTTPX_DEFAULT,
                SEND_MANY_HTTPX_DEFAULT,
            )
        ),
        *(
            target
            for row in (BATCHER_AIOHTTP, SEND_MANY_AIOHTTP)
            for target in (
                Target(
                    f"fanout c=50, {row} ÷ httpx over httpx-aiohttp",
                    Ratio(Median(f"fanout/{row}/50"), Median(f"fanout/{HTTPX_AIOHTTP}/50")),
                    at_least(0.9),
                    "req/s ratio",
                ),
                Target(
                    f"fanout c=50, {row} ÷ hand aiohttp",
                    Ratio(Median(f"fanout/{row}/50"), Median(f"fanout/{HAND_AIOHTTP}/50")),
                    at_least(0.4),
                    "req/s ratio",
                ),
            )
        ),
    ),
)
