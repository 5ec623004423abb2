"""One campaign on PostgreSQL, sent by 1, 2 and 4 ``aiosms worker`` processes.

``python -m benchmarks --only fleet`` runs it as a scenario: a throwaway PostgreSQL
cluster (the tests' helper, tests/postgres_support.py: initdb and pg_ctl needed), the
benchmark server answering as 1000sms after 50 ms per request, and for each worker
count a fresh campaign worked by that many real ``aiosms worker --until-done``
processes (unpinned: the harness pins itself to one CPU). 1000sms sends one message
per request, so each worker has ``--concurrency`` requests in flight and one worker's
ceiling is about ``concurrency / latency`` messages/s; more workers add requests in
flight, the journal is what they share. The rate is the journal's own: accepted rows
over the span from the first claim to the last settlement (process start-up, some
0.5 s of imports, is left out; the wall time is shown beside it). The target: 4
workers ≥ 2.5 × 1 worker, in the same run.

``python -m benchmarks._fleet [--dsn CONNINFO] [--workers 1,2,4] [--rows N]
[--latency 0.05] [--concurrency 5] [--repeats 1]`` runs the same on its own (its own
cluster unless ``--dsn`` names a database) and prints the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import psycopg

import aiosms
from aiosms.campaigns import Campaign, PostgresJournal
from benchmarks._common import TEXT, THOUSANDSMS_SENDER, fmt_rate, fmt_ratio, phone, table
from benchmarks._harness import heading, progress
from benchmarks._server import ROOT, THOUSANDSMS_EMAIL, THOUSANDSMS_PASSWORD, ServerProcess

if TYPE_CHECKING:
    from benchmarks._harness import Context

WORKERS = (1, 2, 4)
LATENCY = 0.05
#: Requests in flight per worker process: one worker's ceiling is concurrency / latency
#: (40 messages/s), so four stay within what a shared 2-CPU machine can journal (measured
#: there: ~130 messages/s in all at 5 per worker, where 4 workers did no better than 2).
CONCURRENCY = 2
#: Rows of each campaign: 1 worker at its ceiling takes ~40 s.
ROWS = 1500
QUICK_ROWS = 300
GOAL = 2.5
#: ``--packet-size`` of the workers: 1000sms packets are one message each whatever it
#: says, but a claim takes four packets' worth of rows, so it sizes the claims.
CLAIM = 5


async def create(dsn: str, name: str, rows: int) -> None:
    async with PostgresJournal(dsn) as journal:
        messages = (aiosms.Message(to=phone(i), text=TEXT, key=i) for i in range(rows))
        await Campaign.create(journal, name, messages, sender=THOUSANDSMS_SENDER, dedupe=False)


def worker_command(dsn: str, url: str, name: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "aiosms.cli", "--gateway", "1000sms", "--base-url", f"{url}/",
        "--journal", dsn, "--output", "json", "worker", "--campaign", name, "--until-done",
        "--poll", "0.2", "--max-concurrency", str(concurrency), "--packet-size", str(CLAIM),
    ]  # fmt: skip


def _all_cpus() -> None:
    # The harness pins its main thread to one CPU; this thread, and the processes it
    # starts (they inherit it), get every CPU.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def measure(dsn: str, url: str, workers: int, rows: int, concurrency: int) -> dict[str, float]:
    """One campaign of ``rows`` sent by ``workers`` processes: its rate and wall time."""
    name = f"fleet-{workers}-{uuid.uuid4().hex[:8]}"
    anyio.run(create, dsn, name, rows)
    env = {
        **os.environ,
        "AIOSMS_1000SMS_EMAIL": THOUSANDSMS_EMAIL,
        "AIOSMS_1000SMS_PASSWORD": THOUSANDSMS_PASSWORD,
    }
    command = worker_command(dsn, url, name, concurrency)
    with ExitStack() as stack:
        started = time.perf_counter()
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                    cwd=ROOT,
                )
            )
            for _ in range(workers)
        ]
        for process in processes:
            _, err = process.communicate(timeout=900)
            if process.returncode != 0:
                raise RuntimeError(f"a worker exited {process.returncode}: {err[-2000:]}")
        wall = time.perf_counter() - started
    with psycopg.connect(dsn) as db:
        found = db.execute(
            "SELECT COUNT(*) FILTER (WHERE m.state = 'accepted'), "
            "EXTRACT(EPOCH FROM MAX(m.settled_at) - MIN(m.claimed_at)) "
            "FROM aiosms_messages m JOIN aiosms_campaigns c ON c.id = m.campaign "
            "WHERE c.name = %s",
            (name,),
        ).fetchone()
    assert found is not None
    accepted, span = int(found[0]), float(found[1])
    return {"accepted": accepted, "span": span, "wall": wall, "rate": accepted / span}


@contextmanager
def database(dsn: str | None) -> Iterator[str]:
    """``dsn``, or a fresh database in a throwaway cluster stopped on the way out."""
    if dsn:
        yield dsn
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from postgres_support import running_cluster  # type: ignore[import-not-found]

    with running_cluster() as cluster:
        yield cluster.new_database()


def run_all(
    dsn: str | None,
    *,
    workers: tuple[int, ...],
    rows: int,
    latency: float,
    concurrency: int,
    repeats: int,
    progress: Any = None,
) -> dict[int, list[dict[str, float]]]:
    """Every worker count ``repeats`` times (interleaved), on one cluster and one server."""
    _all_cpus()
    results: dict[int, list[dict[str, float]]] = {n: [] for n in workers}
    with database(dsn) as conninfo, ServerProcess(latency=latency, cpu=None) as server:
        for repeat in range(repeats):
            for count in workers:
                row = measure(conninfo, server.url, count, rows, concurrency)
                results[count].append(row)
                if progress is not None:
                    progress(
                        f"fleet {repeat + 1}/{repeats}, {count} worker(s): "
                        f"{fmt_rate(row['rate'])} msgs/s over {row['span']:.1f} s "
                        f"(wall {row['wall']:.1f} s)"
                    )
    return results


def render(results: dict[int, list[dict[str, float]]], rows: int) -> tuple[str, float | None]:
    """The Markdown table, and the median rate of the most workers ÷ that of one."""
    medians = {n: statistics.median(r["rate"] for r in rs) for n, rs in results.items() if rs}
    one = medians.get(1)
    lines = []
    for count, rs in results.items():
        rates = [r["rate"] for r in rs]
        lines.append(
            [
                str(count),
                fmt_rate(medians[count]),
                f"{fmt_rate(min(rates))}–{fmt_rate(max(rates))}",
                fmt_ratio(medians[count] / one if one else None),
                f"{statistics.median(r['span'] for r in rs):.1f}",
                f"{statistics.median(r['wall'] for r in rs):.1f}",
                f"{int(min(r['accepted'] for r in rs)):,} / {rows:,}",
            ]
        )
    header = ["workers", "msgs/s", "min–max", "÷ 1 worker", "span s", "wall s", "accepted"]
    most = max(medians) if medians else None
    ratio = medians[most] / one if one and most and most != 1 else None
    return table(header, lines), ratio


async def fleet(ctx: Context) -> None:
    """The ``fleet`` scenario of ``python -m benchmarks``."""
    rows = QUICK_ROWS if ctx.quick else ROWS
    results = await anyio.to_thread.run_sync(
        lambda: run_all(
            None,
            workers=WORKERS,
            rows=rows,
            latency=LATENCY,
            concurrency=CONCURRENCY,
            repeats=ctx.repeats,
            progress=progress,
        )
    )
    shown, ratio = render(results, rows)
    stat = ctx.stat("fleet/ratio")
    ratios = [a["rate"] / b["rate"] for a, b in zip(results[WORKERS[-1]], results[1], strict=True)]
    if ratio is not None:
        stat.samples.extend(ratios)
    print(
        heading(
            "fleet",
            f"one campaign of {rows:,} rows on PostgreSQL, sent by 1, 2 and 4 `aiosms worker` "
            f"processes; 1000sms with {LATENCY * 1000:.0f} ms per request, {CONCURRENCY} "
            "requests in flight per worker",
            ctx,
        )
    )
    print(shown)
    print(
        "\nRate: accepted rows ÷ (last settlement − first claim), from the journal. Each "
        "message is its own request (1000sms), marked `sending` (synchronous commit) "
        "before it and settled after it."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._fleet")
    parser.add_argument("--dsn", default="", help="libpq connection string (default: own cluster)")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)))
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--latency", type=float, default=LATENCY)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    workers = tuple(int(n) for n in args.workers.split(","))
    results = run_all(
        args.dsn or None,
        workers=workers,
        rows=args.rows,
        latency=args.latency,
        concurrency=args.concurrency,
        repeats=args.repeats,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(
        f"rows {args.rows}, 1000sms latency {args.latency * 1000:.0f} ms, "
        f"{args.concurrency} request(s) in flight per worker\n"
    )
    shown, ratio = render(results, args.rows)
    print(shown)
    if ratio is not None:
        met = "met" if ratio >= GOAL else "MISSED"
        print(f"\n{max(workers)} workers ÷ 1 worker: {ratio:.2f} (goal ≥ {GOAL}: {met})")


if __name__ == "__main__":
    main()
