"""The ``campaign`` scenario's child process: a durable campaign through a SQLite journal.

Run by the harness as ``python -m benchmarks._campaign --base-url URL --count N
--journal PATH`` (through ``LAUNCHER``, like ``_million``): imports N rows into a
fresh journal, then ``Campaign.run`` sends them in my-sms JSON packets against the
benchmark server, and prints one JSON line with the import and send rates, the
rows accepted, and peak RSS (``ru_maxrss`` and ``VmHWM``). It stops by itself if its
standard input closes (the harness is gone).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

import aiosms
from aiosms.campaigns import Campaign, SqliteJournal
from benchmarks._common import MYSMS_SENDER, TEXT, phone
from benchmarks._million import exit_with_parent, high_water_bytes, peak_rss_bytes
from benchmarks._server import MYSMS_PASSWORD, MYSMS_USER


def messages(count: int) -> Iterator[aiosms.Message]:
    for index in range(count):
        yield aiosms.Message(to=phone(index), text=TEXT, key=index)


async def run(base_url: str, count: int, packet: int, path: Path) -> dict[str, float | int]:
    async with SqliteJournal(path) as journal:
        started = time.perf_counter()
        campaign = await Campaign.create(journal, "bench", messages(count), sender=MYSMS_SENDER)
        import_seconds = time.perf_counter() - started
        sms = aiosms.MySms(
            username=MYSMS_USER,
            password=MYSMS_PASSWORD,
            base_url=f"{base_url}/rest/sms/",
        )
        cpu = time.process_time()
        started = time.perf_counter()
        async with sms:
            summary = await campaign.run(sms, packet_size=packet)
        seconds = time.perf_counter() - started
        cpu_share = (time.process_time() - cpu) / seconds
    return {
        "count": count,
        "received": summary.sent,
        "ok": summary.counts["accepted"],
        "seconds": seconds,
        "import_seconds": import_seconds,
        "client_cpu": cpu_share,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--packet", type=int, default=1000)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args()
    if args.watch_stdin:
        exit_with_parent()
    baseline, baseline_hwm = peak_rss_bytes(), high_water_bytes()
    result: dict[str, float | int | None] = dict(
        anyio.run(run, args.base_url, args.count, args.packet, args.journal)
    )
    result["baseline_rss"] = baseline
    result["peak_rss"] = peak_rss_bytes()
    result["baseline_hwm"] = baseline_hwm
    result["peak_hwm"] = high_water_bytes()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
