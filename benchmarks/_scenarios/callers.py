"""``callers``: many tasks each awaiting ``Batcher.send`` in a loop (a web app's requests).

No hand-written baseline: each row is measured against the row with the fewest
callers, so the table shows what callers waiting for room cost.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from benchmarks._common import SendFn, fmt_pct, fmt_rate, fmt_ratio, ratio, table
from benchmarks._drivers import PACKET_CONCURRENCY, aiosms_callers, mysms
from benchmarks._harness import Context, Opener, Scenario, heading, run_rows, spread

#: Tasks calling ``Batcher.send`` at once, and the Batcher's ``max_pending`` below them.
CALLERS = (100, 1_000, 5_000)
CALLERS_MAX_PENDING = 100


async def run(ctx: Context) -> None:
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


SCENARIO = Scenario("callers", run)
