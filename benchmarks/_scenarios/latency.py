"""``latency``: the concurrency sweep against a gateway with 50 ms of latency.

1000sms with N = 10, 50, 100 and 200 requests in flight and ``max_concurrency=N``
alone (no ``limits``): the default transport on asyncio and on trio, the aiohttp
transport and hand-written aiohttp, each as a fraction of the ideal N / latency.
This scenario was called ``inflight``; ``--only inflight`` still selects it.
"""

from __future__ import annotations

import functools
import math

import anyio

from benchmarks import _baselines as base
from benchmarks._common import Sample, fmt_pct, fmt_rate, fmt_ratio, ratio, table
from benchmarks._drivers import (
    HAND_AIOHTTP,
    SEND_MANY_AIOHTTP,
    SEND_MANY_HTTPX,
    SEND_MANY_TRIO,
    Transport,
    aiosms_send_many,
    thousandsms,
)
from benchmarks._harness import (
    LATENCY50,
    Context,
    Opener,
    Scenario,
    heading,
    measure,
    progress,
    spread,
)
from benchmarks._targets import Const, Median, Ratio, Target, WorstRatio, WorstStep, at_least

#: Requests in flight in the sweep (against LATENCY50).
SWEEP_CONCURRENCY = (10, 50, 100, 200)
#: Seconds' worth of requests at the ideal rate that one row of the sweep sends.
SWEEP_SECONDS = 1.5


async def run(ctx: Context) -> None:
    """1000sms with 50 ms gateway latency: the fraction of the ideal N / latency reached
    with N requests in flight, with ``max_concurrency=N`` alone (no ``limits``)."""
    server = ctx.servers[LATENCY50]
    url = server.url
    pool = ctx.pool
    names = (SEND_MANY_HTTPX, SEND_MANY_TRIO, SEND_MANY_AIOHTTP, HAND_AIOHTTP)

    def opener(name: str, c: int) -> Opener:
        if name == HAND_AIOHTTP:
            return lambda: base.aiohttp_fanout(f"{url}/", c)
        transport: Transport = "aiohttp" if name == SEND_MANY_AIOHTTP else None
        return lambda: aiosms_send_many(thousandsms(url, c, transport, sized_limits=False), pool)

    for repeat in range(ctx.repeats):
        for c in SWEEP_CONCURRENCY:
            # A fixed count per row bounds its time: at most 1.5 s at the ideal rate,
            # 15 s at a tenth of it.
            count = 4 * c if ctx.quick else math.ceil(c / LATENCY50 * SWEEP_SECONDS)
            for name in names:
                key = f"{name}/{c}"

                async def one(
                    key: str = key, name: str = name, c: int = c, count: int = count
                ) -> Sample:
                    sample, _ = await measure(
                        opener(name, c),
                        server,
                        warmup=2 * c,
                        count=count,
                        low=count,
                        high=count,
                        label=key,
                    )
                    return sample

                if name == SEND_MANY_TRIO:
                    # Its own trio event loop in a worker thread; this loop only waits.
                    sample = await anyio.to_thread.run_sync(
                        functools.partial(anyio.run, one, backend="trio")
                    )
                else:
                    sample = await one()
                ctx.stat(f"latency/{key}").add(sample.rate, sample)
                progress(
                    f"latency {repeat + 1}/{ctx.repeats} {key}: {fmt_rate(sample.rate)} req/s "
                    f"({sample.ok} in {sample.seconds:.2f} s)"
                )
    table_rows = []
    for name in names:
        previous: float | None = None
        for c in SWEEP_CONCURRENCY:
            stat = ctx.results[f"latency/{name}/{c}"]
            ideal = c / LATENCY50
            asyncio_row = ctx.median(f"latency/{SEND_MANY_HTTPX}/{c}")
            table_rows.append(
                [
                    name,
                    str(c),
                    fmt_rate(stat.median),
                    spread(stat),
                    f"{stat.median / ideal:.2f}",
                    "—" if previous is None else f"{stat.median / previous:.2f}",
                    fmt_ratio(ratio(stat.median, asyncio_row)),
                    fmt_pct(stat.client_cpu),
                ]
            )
            previous = stat.median
    print(
        heading(
            "latency",
            f"1000sms push_msg requests/s with {LATENCY50 * 1000:.0f} ms gateway latency, "
            "max_concurrency=N alone",
            ctx,
        )
    )
    print(
        table(
            [
                "variant",
                "in flight N",
                "req/s",
                "min–max",
                f"÷ ideal N/{LATENCY50}",
                "÷ previous step",
                "÷ httpx on asyncio",
                "client CPU",
            ],
            table_rows,
        )
    )


SCENARIO = Scenario(
    "latency",
    run,
    latencies=(LATENCY50,),
    aliases=("inflight",),
    targets=(
        *(
            Target(
                f"latency N={c}, {SEND_MANY_HTTPX} ÷ ideal",
                Ratio(Median(f"latency/{SEND_MANY_HTTPX}/{c}"), Const(c / LATENCY50)),
                at_least(goal),
                "req/s ratio",
            )
            for c, goal in ((50, 0.85), (100, 0.55))
        ),
        *(
            Target(
                f"latency, {row}: worst step ÷ the step before",
                WorstStep(tuple(f"latency/{row}/{c}" for c in SWEEP_CONCURRENCY)),
                at_least(0.9),
                "req/s ratio",
            )
            for row in (SEND_MANY_HTTPX, SEND_MANY_TRIO)
        ),
        Target(
            "latency, trio ÷ asyncio at the worst step",
            WorstRatio(
                tuple(
                    Ratio(
                        Median(f"latency/{SEND_MANY_TRIO}/{c}"),
                        Median(f"latency/{SEND_MANY_HTTPX}/{c}"),
                    )
                    for c in SWEEP_CONCURRENCY
                )
            ),
            at_least(0.8),
            "req/s ratio",
        ),
    ),
)
