"""One campaign on PostgreSQL, sent by 1, 2, 4… worker processes: how throughput scales.

``python -m benchmarks._fleet --dsn CONNINFO [--workers 1,2,4] [--rows 6000]
[--latency 0.05] [--packet 20] [--concurrency 1]`` starts the benchmark server (its
replies delayed by ``--latency`` seconds, like a distant gateway), and for each worker
count creates a fresh campaign of ``--rows`` rows in the database and times worker
processes (``python -m benchmarks._fleet worker …``) from their start until the last
one exits. It prints one Markdown row per worker count. Each worker runs
``Campaign.run`` with ``max_concurrency=--concurrency``: with latency L and packets of
P, one worker's ceiling is about ``concurrency * P / L`` messages/s.

Not part of ``python -m benchmarks`` (it needs a PostgreSQL server); the test suite's
throwaway cluster (tests/postgres_support.py) is one way to get one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack

import anyio

import aiosms
from aiosms.campaigns import Campaign, PostgresJournal
from benchmarks._common import MYSMS_SENDER, TEXT, phone
from benchmarks._million import exit_with_parent
from benchmarks._server import MYSMS_PASSWORD, MYSMS_USER, ServerProcess


async def create(dsn: str, name: str, rows: int) -> None:
    async with PostgresJournal(dsn) as journal:
        messages = (aiosms.Message(to=phone(i), text=TEXT, key=i) for i in range(rows))
        await Campaign.create(journal, name, messages, sender=MYSMS_SENDER, dedupe=False)


async def counts(dsn: str, name: str) -> dict[str, int]:
    async with PostgresJournal(dsn) as journal:
        return await (await Campaign.open(journal, name)).counts()


async def work(dsn: str, name: str, url: str, packet: int, concurrency: int) -> int:
    async with PostgresJournal(dsn) as journal:
        campaign = await Campaign.open(journal, name)
        sms = aiosms.MySms(
            username=MYSMS_USER, password=MYSMS_PASSWORD, base_url=f"{url}/rest/sms/"
        )
        async with sms:
            summary = await campaign.run(
                sms, packet_size=packet, claim_packets=2, max_concurrency=concurrency
            )
    return summary.sent


def measure(args: argparse.Namespace, url: str, workers: int) -> dict[str, float]:
    name = f"fleet-{workers}-{uuid.uuid4().hex[:8]}"
    anyio.run(create, args.dsn, name, args.rows)
    command = [
        sys.executable, "-m", "benchmarks._fleet", "worker", "--dsn", args.dsn, "--name", name,
        "--url", url, "--packet", str(args.packet), "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    with ExitStack() as stack:
        started = time.perf_counter()
        processes = [
            stack.enter_context(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
            for _ in range(workers)
        ]
        sent = []
        # Their stdin stays open while they run: they exit when it closes (we are gone).
        for process in processes:
            assert process.stdout is not None
            sent.append(int(process.stdout.read().strip() or 0))
            process.wait(timeout=600)
        seconds = time.perf_counter() - started
    accepted = anyio.run(counts, args.dsn, name)["accepted"]
    return {
        "workers": workers,
        "seconds": seconds,
        "accepted": accepted,
        "rate": accepted / seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._fleet")
    parser.add_argument("mode", nargs="?", default="harness", choices=["harness", "worker"])
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--packet", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--name", default="")
    parser.add_argument("--url", default="")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        exit_with_parent()
        sent = anyio.run(work, args.dsn, args.name, args.url, args.packet, args.concurrency)
        print(sent, flush=True)
        return
    print(
        f"rows {args.rows}, gateway latency {args.latency * 1000:.0f} ms, packets of "
        f"{args.packet}, {args.concurrency} request(s) in flight per worker\n"
    )
    print("| workers | seconds | accepted | messages/s |\n|---:|---:|---:|---:|")
    with ServerProcess(latency=args.latency, cpu=None) as server:
        for workers in (int(n) for n in args.workers.split(",")):
            row = measure(args, server.url, workers)
            print(
                f"| {workers} | {row['seconds']:.2f} | {row['accepted']:.0f} | {row['rate']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
