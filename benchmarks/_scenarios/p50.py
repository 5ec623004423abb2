"""``p50``: one send at a time, the time per send (p50 and p99) on both gateways.

``send()`` on both transports beside plain httpx and hand-written aiohttp, with
default limits and timeouts.
"""

from __future__ import annotations

import statistics
import time

from benchmarks import _baselines as base
from benchmarks._common import fmt_ratio, ratio, table
from benchmarks._drivers import (
    HAND_AIOHTTP,
    PLAIN_HTTPX,
    SEND_AIOHTTP,
    SEND_HTTPX,
    OneOpener,
    Transport,
    aiosms_single,
    mysms,
    thousandsms,
)
from benchmarks._harness import Context, Scenario, heading, progress
from benchmarks._targets import Median, Ratio, Target, at_most


async def run(ctx: Context) -> None:
    url = ctx.server.url
    pool = ctx.pool
    gateways = ("mysms", "thousandsms")
    names = (PLAIN_HTTPX, SEND_HTTPX, SEND_AIOHTTP, HAND_AIOHTTP)
    warmup, count = (20, 100) if ctx.quick else (200, 2000)

    def opener(gateway: str, name: str) -> OneOpener:
        if name == PLAIN_HTTPX:
            return lambda: base.httpx_single(url, gateway)
        if name == HAND_AIOHTTP:
            return lambda: base.aiohttp_single(url, gateway)
        transport: Transport = "aiohttp" if name == SEND_AIOHTTP else None
        if gateway == "mysms":
            return lambda: aiosms_single(mysms(url, "json", None, transport), pool)
        return lambda: aiosms_single(thousandsms(url, None, transport), pool)

    p99: dict[str, list[float]] = {}
    for repeat in range(ctx.repeats):
        for gateway in gateways:
            for name in names:
                key = f"{gateway}/{name}"
                async with opener(gateway, name)() as one:
                    for index in range(warmup):
                        await one(index)
                    times: list[float] = []
                    failed = 0
                    for index in range(warmup, warmup + count):
                        started = time.perf_counter()
                        ok = await one(index)
                        times.append(time.perf_counter() - started)
                        failed += not ok
                if failed:
                    progress(f"  !! p50 {key}: {failed} of {count} not accepted")
                median = statistics.median(times) * 1e6
                tail = statistics.quantiles(times, n=100)[98] * 1e6
                ctx.stat(f"p50/{key}").add(median)
                p99.setdefault(key, []).append(tail)
                progress(
                    f"p50 {repeat + 1}/{ctx.repeats} {key}: p50 {median:.0f} µs, p99 {tail:.0f} µs"
                )
    table_rows = []
    labels = {"mysms": "my-sms send/json", "thousandsms": "1000sms push_msg"}
    for gateway in gateways:
        plain = ctx.median(f"p50/{gateway}/{PLAIN_HTTPX}")
        for name in names:
            stat = ctx.results[f"p50/{gateway}/{name}"]
            table_rows.append(
                [
                    labels[gateway],
                    name,
                    f"{stat.median:.0f}",
                    f"{stat.low:.0f}–{stat.high:.0f}",
                    f"{statistics.median(p99[f'{gateway}/{name}']):.0f}",
                    fmt_ratio(ratio(stat.median, plain)),
                ]
            )
    print(
        heading(
            "p50",
            f"one send at a time, {count:,} sends after {warmup} warm-up, µs per send",
            ctx,
        )
    )
    print(
        table(
            ["gateway", "variant", "p50 µs", "p50 min–max", "p99 µs", "p50 ÷ plain httpx"],
            table_rows,
        )
    )
    print("\nDefault limits and timeouts; the aiohttp rows and hand aiohttp are extra rows.")


SCENARIO = Scenario(
    "p50",
    run,
    targets=tuple(
        Target(
            f"p50 {gateway}, aiosms send ÷ plain httpx",
            Ratio(Median(f"p50/{gateway}/{SEND_HTTPX}"), Median(f"p50/{gateway}/{PLAIN_HTTPX}")),
            at_most(1.15),
            "p50 ratio",
        )
        for gateway in ("mysms", "thousandsms")
    ),
)
