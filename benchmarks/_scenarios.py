"""The scenarios: each measures its rows (repeated, interleaved) and prints one table.

aiosms is driven the way its README shows (``Batcher.send_all``, ``send_many``,
``send``); its baselines live in ``_baselines``. Rows of one scenario run in turn
within each repeat, so a slow patch of the machine hits every row alike. Ratios
are always against baselines measured in the same run.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import httpx

import aiosms
from benchmarks import _baselines as base
from benchmarks._common import (
    MYSMS_SENDER,
    THOUSANDSMS_SENDER,
    CpuMeter,
    Sample,
    SendFn,
    Stat,
    fmt_pct,
    fmt_rate,
    fmt_ratio,
    ratio,
    table,
    take,
)
from benchmarks._fleet import fleet
from benchmarks._million import LAUNCHER
from benchmarks._server import (
    MYSMS_PASSWORD,
    MYSMS_USER,
    ROOT,
    THOUSANDSMS_EMAIL,
    THOUSANDSMS_PASSWORD,
    ServerProcess,
)

Opener = Callable[[], AbstractAsyncContextManager[SendFn]]
OneOpener = Callable[[], AbstractAsyncContextManager[base.OneFn]]
Transport = Literal["aiohttp"] | None

FANOUT_CONCURRENCY = (1, 10, 50, 100)
PACKET_SIZES = (1, 100, 1000)
#: Requests in flight for the packet scenario, every row alike: aiosms's default.
PACKET_CONCURRENCY = 10
LATENCY50 = 0.05
LATENCY50_CONCURRENCY = (10, 50)
MILLION = 1_000_000
#: One measurement aims at this many seconds (its count comes from a warm-up's rate).
TARGET_SECONDS = 1.5
#: A calibration probe must last this long before its rate is trusted.
PROBE_SECONDS = 0.25

SCENARIOS = (
    "ceiling",
    "fanout",
    "packets",
    "latency",
    "callers",
    "million",
    "campaign",
    "latency50",
    "inflight",
    "fleet",
)
#: Rows of the ``campaign`` scenario unless ``--campaign-rows`` says otherwise.
CAMPAIGN_ROWS = 1_000_000
#: Requests in flight in the ``inflight`` scenario (against LATENCY50).
INFLIGHT_CONCURRENCY = (10, 50, 100, 200)
#: Seconds' worth of requests at the ideal rate that one ``inflight`` row sends.
INFLIGHT_SECONDS = 1.5
SEND_MANY_TRIO = "aiosms send_many · httpx on trio"
#: Tasks calling ``Batcher.send`` at once, and the Batcher's ``max_pending`` below them.
CALLERS = (100, 1_000, 5_000)
CALLERS_MAX_PENDING = 100

# Rows whose names the targets look up.
PLAIN_HTTPX = "plain httpx"
HTTPX_AIOHTTP = "httpx over httpx-aiohttp"
HAND_AIOHTTP = "hand aiohttp"
BATCHER_HTTPX = "aiosms Batcher · httpx"
SEND_MANY_HTTPX = "aiosms send_many · httpx"
BATCHER_AIOHTTP = "aiosms Batcher · aiohttp"
SEND_MANY_AIOHTTP = "aiosms send_many · aiohttp"
HAND_PACKED = "hand-packed httpx"
PACKET_BATCHER = "aiosms Batcher.send_all"
PACKET_SEND_MANY = "aiosms MySms.send_many"
SEND_HTTPX = "aiosms send · httpx"
SEND_AIOHTTP = "aiosms send · aiohttp"
BATCHER_HTTPX_DEFAULT = "aiosms Batcher · httpx, default limits"
SEND_MANY_HTTPX_DEFAULT = "aiosms send_many · httpx, default limits"
#: aiosms's default pool size (``aiosms.DEFAULT_LIMITS``).
DEFAULT_POOL = aiosms.DEFAULT_LIMITS.max_connections or 10


@dataclass
class Context:
    quick: bool
    repeats: int
    server: ServerProcess
    slow_server: ServerProcess | None
    pool: list[aiosms.Message]
    campaign_rows: int = CAMPAIGN_ROWS
    #: Every row's statistics by "scenario/row/parameter", for the targets.
    results: dict[str, Stat] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def stat(self, key: str) -> Stat:
        return self.results.setdefault(key, Stat())

    def median(self, key: str) -> float | None:
        stat = self.results.get(key)
        return stat.median if stat and stat.samples else None


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def sizing(concurrency: int | None, sized_limits: bool) -> dict[str, object]:
    """Client options for ``concurrency`` requests in flight (None: aiosms's defaults)."""
    options: dict[str, object] = {}
    if concurrency is not None:
        options["max_concurrency"] = concurrency
        if sized_limits:
            options["limits"] = limits(concurrency)
    return options


def thousandsms(
    base_url: str, concurrency: int | None, transport: Transport, *, sized_limits: bool = True
) -> aiosms.ThousandSms:
    sized = sizing(concurrency, sized_limits)
    return aiosms.ThousandSms(
        email=THOUSANDSMS_EMAIL,
        password=THOUSANDSMS_PASSWORD,
        sender=THOUSANDSMS_SENDER,
        base_url=f"{base_url}/",
        transport=transport,
        **sized,  # type: ignore[arg-type]
    )


def mysms(
    base_url: str,
    fmt: Literal["json", "xml"],
    concurrency: int | None,
    transport: Transport,
    packet_size: int = 100,
) -> aiosms.MySms:
    sized = sizing(concurrency, True)
    return aiosms.MySms(
        username=MYSMS_USER,
        password=MYSMS_PASSWORD,
        sender=MYSMS_SENDER,
        base_url=f"{base_url}/rest/sms/",
        format=fmt,
        transport=transport,
        packet_size=packet_size,
        **sized,  # type: ignore[arg-type]
    )


class _Orphans:
    """Receipts a Batcher could give to nobody (the run was interrupted)."""

    count = 0

    def add(self, receipt: aiosms.Receipt) -> None:
        self.count += 1


ORPHANS = _Orphans()


# -- aiosms as a user drives it ------------------------------------------------------------


@asynccontextmanager
async def aiosms_batcher(
    client: aiosms.MySms | aiosms.ThousandSms,
    pool: list[aiosms.Message],
    *,
    max_batch_size: int = 100,
    max_concurrency: int | None = None,
) -> AsyncIterator[SendFn]:
    batcher = aiosms.Batcher(
        client,
        max_batch_size=max_batch_size,
        max_concurrency=max_concurrency,
        # Only an interrupted run has receipts nobody waits for: count them, don't log
        # each one.
        on_receipt=ORPHANS.add,
    )
    async with client, batcher:

        async def send(start: int, count: int) -> int:
            ok = 0
            async for receipt in batcher.send_all(take(pool, start, count)):
                ok += receipt.ok
            return ok

        yield send


@asynccontextmanager
async def aiosms_send_many(
    client: aiosms.MySms | aiosms.ThousandSms, pool: list[aiosms.Message]
) -> AsyncIterator[SendFn]:
    async with client:

        async def send(start: int, count: int) -> int:
            receipts = await client.send_many(take(pool, start, count))
            return sum(receipt.ok for receipt in receipts)

        yield send


@asynccontextmanager
async def aiosms_single(
    client: aiosms.MySms | aiosms.ThousandSms, pool: list[aiosms.Message]
) -> AsyncIterator[base.OneFn]:
    async with client:

        async def one(index: int) -> bool:
            receipt = await client.send(pool[index % len(pool)])
            return receipt.ok

        yield one


# -- measuring -----------------------------------------------------------------------------


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


def spread(stat: Stat) -> str:
    return f"{fmt_rate(stat.low)}–{fmt_rate(stat.high)}"


def heading(name: str, what: str, ctx: Context) -> str:
    return f"\n### {name} — {what} (median of {ctx.repeats} [min–max])\n"


# -- ceiling -------------------------------------------------------------------------------


async def ceiling(ctx: Context) -> None:
    """The server's own rate, driven by a minimal raw HTTP/1.1 client (no pipelining)."""
    port = ctx.server.port
    push = base.raw_request(
        port, "/", "application/x-www-form-urlencoded; charset=utf-8", base.push_msg_body(0)
    )
    chunk = base.mysms_chunk(0, 1000)
    packet_json = base.raw_request(
        port, "/rest/sms/send/json", "application/json", base.mysms_json_body(chunk)
    )
    packet_xml = base.raw_request(
        port, "/rest/sms/send/xml", "application/xml", base.mysms_xml_body(chunk)
    )
    cases = [
        ("1000sms push_msg (JSON)", push, 1, 10),
        ("1000sms push_msg (JSON)", push, 1, 50),
        ("1000sms push_msg (JSON)", push, 1, 200),
        ("my-sms send/json, packets of 1,000", packet_json, 1000, 4),
        ("my-sms send/xml, packets of 1,000", packet_xml, 1000, 4),
    ]
    seconds = 0.3 if ctx.quick else 1.5
    rows = []
    for name, request, per, connections in cases:
        stat = ctx.stat(f"ceiling/{name}/{connections}")
        for _ in range(ctx.repeats):
            meter = CpuMeter(ctx.server.cpu_seconds)
            meter.start()
            replies, failed, _ = await base.raw_ceiling(
                port, request, connections, 500_000, seconds
            )
            sample = meter.stop(replies, replies - failed)
            stat.add(sample.rate, sample)
            if failed:
                progress(f"  !! ceiling {name}: {failed} replies were not 200")
        rows.append(
            [
                name,
                str(connections),
                fmt_rate(stat.median),
                spread(stat),
                fmt_rate(stat.median * per),
                fmt_pct(stat.server_cpu),
                fmt_pct(stat.client_cpu),
            ]
        )
        progress(f"ceiling {name} ×{connections}: {fmt_rate(stat.median)} req/s")
    print(heading("ceiling", "the benchmark server's own rate, raw asyncio client", ctx))
    print(
        table(
            ["request", "connections", "req/s", "min–max", "msgs/s", "server CPU", "client CPU"],
            rows,
        )
    )
    print(
        "\nServer CPU below 100% means the raw client (one core) is the limit, so the "
        "server's true ceiling is higher still."
    )


# -- fanout --------------------------------------------------------------------------------


async def fanout(ctx: Context) -> None:
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


# -- packets -------------------------------------------------------------------------------


async def packets(ctx: Context) -> None:
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


# -- latency -------------------------------------------------------------------------------


async def latency(ctx: Context) -> None:
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
                    progress(f"  !! latency {key}: {failed} of {count} not accepted")
                median = statistics.median(times) * 1e6
                tail = statistics.quantiles(times, n=100)[98] * 1e6
                ctx.stat(f"latency/{key}").add(median)
                p99.setdefault(key, []).append(tail)
                progress(
                    f"latency {repeat + 1}/{ctx.repeats} {key}: p50 {median:.0f} µs, "
                    f"p99 {tail:.0f} µs"
                )
    table_rows = []
    labels = {"mysms": "my-sms send/json", "thousandsms": "1000sms push_msg"}
    for gateway in gateways:
        plain = ctx.median(f"latency/{gateway}/{PLAIN_HTTPX}")
        for name in names:
            stat = ctx.results[f"latency/{gateway}/{name}"]
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
            "latency",
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


# -- callers -------------------------------------------------------------------------------


@asynccontextmanager
async def aiosms_callers(
    client: aiosms.MySms, pool: list[aiosms.Message], callers: int, max_pending: int
) -> AsyncIterator[SendFn]:
    """``callers`` tasks sharing one Batcher, each awaiting ``send`` in a loop (a web
    app's requests); beyond ``max_pending`` of them wait for room."""
    batcher = aiosms.Batcher(client, max_pending=max_pending, on_receipt=ORPHANS.add)
    async with client, batcher:

        async def send(start: int, count: int) -> int:
            ok = 0

            async def caller(first: int) -> None:
                nonlocal ok
                for index in range(first, start + count, callers):
                    try:
                        await batcher.send(pool[index % len(pool)])
                        ok += 1
                    except aiosms.SmsError:
                        pass

            async with anyio.create_task_group() as tg:
                for first in range(start, start + min(callers, count)):
                    tg.start_soon(caller, first)
            return ok

        yield send


async def callers(ctx: Context) -> None:
    url = ctx.server.url
    pool = ctx.pool
    rows: list[tuple[str, Opener]] = []
    for n in CALLERS:

        def opener(n: int = n) -> AbstractAsyncContextManager[SendFn]:
            return aiosms_callers(
                mysms(url, "json", PACKET_CONCURRENCY, None), pool, n, CALLERS_MAX_PENDING
            )

        rows.append((str(n), opener))
    # Each caller sends at least 20 messages in a timed run (so starting the tasks is
    # not what is measured), and every run lasts about a second or more.
    fixed = {key: 2 * int(key) if ctx.quick else max(60_000, 20 * int(key)) for key, _ in rows}
    await run_rows(
        ctx,
        "callers",
        rows,
        warmup=0 if ctx.quick else 2_000,
        fixed=fixed,
        low=0,
        high=0,
        unit="msgs/s",
    )
    first = ctx.median(f"callers/{CALLERS[0]}")
    table_rows = []
    for n in CALLERS:
        stat = ctx.results[f"callers/{n}"]
        table_rows.append(
            [
                f"{n:,}",
                f"{max(0, n - CALLERS_MAX_PENDING):,}",
                fmt_rate(stat.median),
                spread(stat),
                fmt_ratio(ratio(stat.median, first)),
                fmt_pct(stat.client_cpu),
            ]
        )
    print(
        heading(
            "callers",
            "my-sms JSON, tasks each awaiting Batcher.send in a loop, "
            f"max_pending={CALLERS_MAX_PENDING}, packets of up to 100",
            ctx,
        )
    )
    print(
        table(
            [
                "callers",
                "waiting for room",
                "msgs/s",
                "min–max",
                f"÷ {CALLERS[0]} callers",
                "client CPU",
            ],
            table_rows,
        )
    )
    print(
        "\nCallers beyond max_pending wait for room; a freed place wakes one of them, "
        "so the rate should not fall as they grow."
    )


# -- million -------------------------------------------------------------------------------


async def million(ctx: Context) -> None:
    count = 20_000 if ctx.quick else MILLION
    command = [
        sys.executable,
        "-S",
        "-c",
        LAUNCHER,
        sys.executable,
        "-m",
        "benchmarks._million",
        "--base-url",
        ctx.server.url,
        "--count",
        str(count),
        "--packet",
        "1000",
        "--watch-stdin",
    ]
    mb = 2**20
    rate, peak = ctx.stat("million/rate"), ctx.stat("million/peak")
    baseline, hwm, baseline_hwm = Stat(), Stat(), Stat()
    seconds: list[float] = []
    for repeat in range(ctx.repeats):
        meter = CpuMeter(ctx.server.cpu_seconds)
        meter.start()
        with anyio.fail_after(60 if ctx.quick else 300):
            done = await anyio.run_process(
                command, check=False, stdin=subprocess.PIPE, stderr=None, cwd=ROOT
            )
        server_sample = meter.stop(count, count)
        if done.returncode != 0:
            raise RuntimeError(f"the million child failed with exit code {done.returncode}")
        result = json.loads(done.stdout.decode().strip().splitlines()[-1])
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


# -- campaign ------------------------------------------------------------------------------


def child_command(module: str, ctx: Context, count: int, *extra: str) -> list[str]:
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


async def run_child(command: list[str], timeout: float) -> dict[str, float]:
    with anyio.fail_after(timeout):
        done = await anyio.run_process(
            command, check=False, stdin=subprocess.PIPE, stderr=None, cwd=ROOT
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command[6]} failed with exit code {done.returncode}")
    result: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


async def campaign(ctx: Context) -> None:
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


# -- latency50 -----------------------------------------------------------------------------


async def latency50(ctx: Context) -> None:
    server = ctx.slow_server
    assert server is not None
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


# -- inflight ------------------------------------------------------------------------------


async def inflight(ctx: Context) -> None:
    """1000sms with 50 ms gateway latency: the fraction of the ideal N / latency reached
    with N requests in flight, with ``max_concurrency=N`` alone (no ``limits``)."""
    server = ctx.slow_server
    assert server is not None
    url = server.url
    pool = ctx.pool
    names = (SEND_MANY_HTTPX, SEND_MANY_TRIO, SEND_MANY_AIOHTTP, HAND_AIOHTTP)

    def opener(name: str, c: int) -> Opener:
        if name == HAND_AIOHTTP:
            return lambda: base.aiohttp_fanout(f"{url}/", c)
        transport: Transport = "aiohttp" if name == SEND_MANY_AIOHTTP else None
        return lambda: aiosms_send_many(thousandsms(url, c, transport, sized_limits=False), pool)

    for repeat in range(ctx.repeats):
        for c in INFLIGHT_CONCURRENCY:
            # A fixed count per row bounds its time: at most 1.5 s at the ideal rate,
            # 15 s at a tenth of it.
            count = 4 * c if ctx.quick else math.ceil(c / LATENCY50 * INFLIGHT_SECONDS)
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
                ctx.stat(f"inflight/{key}").add(sample.rate, sample)
                progress(
                    f"inflight {repeat + 1}/{ctx.repeats} {key}: {fmt_rate(sample.rate)} req/s "
                    f"({sample.ok} in {sample.seconds:.2f} s)"
                )
    table_rows = []
    for name in names:
        previous: float | None = None
        for c in INFLIGHT_CONCURRENCY:
            stat = ctx.results[f"inflight/{name}/{c}"]
            ideal = c / LATENCY50
            asyncio_row = ctx.median(f"inflight/{SEND_MANY_HTTPX}/{c}")
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
            "inflight",
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


# -- targets -------------------------------------------------------------------------------


def best(ctx: Context, prefix: str, values: tuple[int, ...]) -> tuple[float | None, int | None]:
    found = [(ctx.median(f"{prefix}/{v}"), v) for v in values]
    known = [(m, v) for m, v in found if m is not None]
    if not known:
        return None, None
    return max(known)


def targets(ctx: Context) -> None:
    """The issue's targets, each as a ratio measured in this run."""
    rows: list[list[str]] = []

    def check(name: str, value: float | None, goal: str, met: bool | None, how: str) -> None:
        if value is None:
            rows.append([name, "not run", goal, "—", how])
        else:
            status = "info" if met is None else "met" if met else "MISSED"
            rows.append([name, f"{value:,.2f}", goal, status, how])

    top, at = best(ctx, f"fanout/{PLAIN_HTTPX}", FANOUT_CONCURRENCY)
    for row in (BATCHER_HTTPX, SEND_MANY_HTTPX, BATCHER_HTTPX_DEFAULT, SEND_MANY_HTTPX_DEFAULT):
        value = ratio(ctx.median(f"fanout/{row}/50") or math.nan, top)
        check(
            f"fanout c=50, {row} ÷ plain httpx at its best (c={at})",
            value,
            "≥ 0.90",
            None if value is None else value >= 0.9,
            "req/s ratio",
        )
    for row in (BATCHER_AIOHTTP, SEND_MANY_AIOHTTP):
        mine = ctx.median(f"fanout/{row}/50") or math.nan
        value = ratio(mine, ctx.median(f"fanout/{HTTPX_AIOHTTP}/50"))
        check(
            f"fanout c=50, {row} ÷ httpx over httpx-aiohttp",
            value,
            "≥ 0.90",
            None if value is None else value >= 0.9,
            "req/s ratio",
        )
        value = ratio(mine, ctx.median(f"fanout/{HAND_AIOHTTP}/50"))
        check(
            f"fanout c=50, {row} ÷ hand aiohttp",
            value,
            "≥ 0.40",
            None if value is None else value >= 0.4,
            "req/s ratio",
        )
    for fmt, goal in (("json", 0.35), ("xml", 0.6)):
        hand = ctx.median(f"packets/{fmt}/1000/{HAND_PACKED}")
        value = ratio(ctx.median(f"packets/{fmt}/1000/{PACKET_BATCHER}") or math.nan, hand)
        check(
            f"packets {fmt.upper()} 1,000, send_all ÷ hand-packed",
            value,
            f"≥ {goal:.2f}",
            None if value is None else value >= goal,
            "msgs/s ratio",
        )
    for gateway in ("mysms", "thousandsms"):
        plain = ctx.median(f"latency/{gateway}/{PLAIN_HTTPX}")
        value = ratio(ctx.median(f"latency/{gateway}/{SEND_HTTPX}") or math.nan, plain)
        check(
            f"latency {gateway} p50, aiosms send ÷ plain httpx",
            value,
            "≤ 1.15",
            None if value is None else value <= 1.15,
            "p50 ratio",
        )
    peak = ctx.results.get("million/peak")
    peak_mb = peak.high if peak and peak.samples else None
    check(
        "million send_all, peak RSS MB (worst repeat)",
        peak_mb,
        "< 150",
        None if peak_mb is None else peak_mb < 150,
        "MB" + (" (quick: 20,000 messages only)" if ctx.quick else ""),
    )
    value = ctx.median("campaign/ratio")
    check(
        "campaign, Campaign.run ÷ send_all (msgs/s)",
        value,
        "≥ 0.50",
        None if value is None else value >= 0.5,
        "msgs/s ratio",
    )
    campaign_peak = ctx.results.get("campaign/peak")
    campaign_mb = campaign_peak.high if campaign_peak and campaign_peak.samples else None
    check(
        "campaign, peak RSS MB (worst repeat)",
        campaign_mb,
        "< 200",
        None if campaign_mb is None else campaign_mb < 200,
        "MB",
    )
    for row in (BATCHER_AIOHTTP, BATCHER_HTTPX):
        value = ctx.median(f"latency50/{row}/50")
        goal = row == BATCHER_AIOHTTP
        check(
            f"latency50 c=50, {row} req/s",
            value,
            "≥ 900" if goal else "(beside it)",
            None if value is None or not goal else value >= 900,
            "req/s",
        )
    for c, goal in ((50, 0.85), (100, 0.55)):
        value = ratio(ctx.median(f"inflight/{SEND_MANY_HTTPX}/{c}") or math.nan, c / LATENCY50)
        check(
            f"inflight N={c}, {SEND_MANY_HTTPX} ÷ ideal",
            value,
            f"≥ {goal:.2f}",
            None if value is None else value >= goal,
            "req/s ratio",
        )
    for row in (SEND_MANY_HTTPX, SEND_MANY_TRIO):
        steps = [ctx.median(f"inflight/{row}/{c}") for c in INFLIGHT_CONCURRENCY]
        known = [x for x in steps if x is not None]
        worst = (
            min(b / a for a, b in itertools.pairwise(known)) if len(known) == len(steps) else None
        )
        check(
            f"inflight, {row}: worst step ÷ the step before",
            worst,
            "≥ 0.90",
            None if worst is None else worst >= 0.9,
            "req/s ratio",
        )
    trio_ratios = [
        ratio(
            ctx.median(f"inflight/{SEND_MANY_TRIO}/{c}") or math.nan,
            ctx.median(f"inflight/{SEND_MANY_HTTPX}/{c}"),
        )
        for c in INFLIGHT_CONCURRENCY
    ]
    known_trio = [x for x in trio_ratios if x is not None]
    worst_trio = min(known_trio) if len(known_trio) == len(trio_ratios) else None
    check(
        "inflight, trio ÷ asyncio at the worst step",
        worst_trio,
        "≥ 0.80",
        None if worst_trio is None else worst_trio >= 0.8,
        "req/s ratio",
    )
    value = ctx.median("fleet/ratio")
    met = None if value is None else value >= 2.5
    check("fleet, 4 workers ÷ 1 worker (msgs/s)", value, "≥ 2.50", met, "msgs/s ratio")
    print("\n### targets — ratios measured in this run\n")
    print(table(["target", "measured", "goal", "status", "unit"], rows))
    for note in ctx.notes:
        print(f"\nNote: {note}")


RUNNERS = {
    "ceiling": ceiling,
    "fanout": fanout,
    "packets": packets,
    "latency": latency,
    "callers": callers,
    "million": million,
    "campaign": campaign,
    "latency50": latency50,
    "inflight": inflight,
    "fleet": fleet,
}
