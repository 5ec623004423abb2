"""Profile aiosms's hot paths against the benchmark server.

    python -m benchmarks._profile mysms-json-1000      # Batcher.send_all, my-sms JSON packets
    python -m benchmarks._profile fanout-httpx-50      # 1000sms fan-out, 50 in flight, httpx
    python -m benchmarks._profile fanout-aiohttp-50    # the same on the aiohttp transport
    python -m benchmarks._profile NAME --api send_many # the same through send_many
    python -m benchmarks._profile fanout-httpx-50 --concurrency 10   # other fan-out widths
    python -m benchmarks._profile fanout-httpx-50 --default-limits   # aiosms's own pool
    python -m benchmarks._profile fanout-httpx-50 --backend trio     # the same on trio
    python -m benchmarks._profile fanout-httpx-50 --url http://127.0.0.1:PORT \
        --api send_many --default-limits --concurrency 200 --repeats 3 --no-cprofile
        # against a server already running (say with --latency 0.05), three times

cProfile by default (top functions by cumulative and by own time, and aiosms's own
functions apart). cProfile slows pure-Python code unevenly, so for proportions run
the same workload under a sampler and summarise its collapsed stacks:

    py-spy record -f raw -o /tmp/out.txt -- python -m benchmarks._profile NAME --no-cprofile
    python -m benchmarks._profile --summarize /tmp/out.txt
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio

from benchmarks._common import SendFn, message_pool
from benchmarks._drivers import aiosms_batcher, aiosms_send_many, mysms, thousandsms
from benchmarks._server import ServerProcess, pin_to_cpu

WORKLOADS: dict[str, tuple[int, str]] = {
    "mysms-json-1000": (300_000, "msgs"),
    "mysms-xml-1000": (100_000, "msgs"),
    "fanout-httpx-50": (5_000, "requests"),
    "fanout-aiohttp-50": (15_000, "requests"),
}


def opener(
    name: str, url: str, api: str, concurrency: int, sized_limits: bool = True
) -> Callable[[], AbstractAsyncContextManager[SendFn]]:
    pool = message_pool()
    if name.startswith("mysms-"):
        fmt = "xml" if "xml" in name else "json"
        if api == "send_many":
            return lambda: aiosms_send_many(
                mysms(url, fmt, 10, None, packet_size=1000),  # type: ignore[arg-type]
                pool,
            )
        return lambda: aiosms_batcher(
            mysms(url, fmt, 10, None),  # type: ignore[arg-type]
            pool,
            max_batch_size=1000,
        )
    transport = "aiohttp" if "aiohttp" in name else None
    client = thousandsms(url, concurrency, transport, sized_limits=sized_limits)  # type: ignore[arg-type]
    if api == "send_many":
        return lambda: aiosms_send_many(client, pool)
    return lambda: aiosms_batcher(client, pool, max_concurrency=concurrency)


async def workload(
    name: str,
    url: str,
    count: int,
    api: str,
    concurrency: int,
    sized_limits: bool,
    profile: cProfile.Profile | None,
    repeats: int = 1,
) -> None:
    async with opener(name, url, api, concurrency, sized_limits)() as send:
        await send(0, min(count // 10, 10_000))
        for _ in range(repeats):
            await measured(name, send, count, profile)


async def measured(name: str, send: SendFn, count: int, profile: cProfile.Profile | None) -> None:
    """One timed run of ``count`` items, its rate and its client CPU per item printed."""
    if profile is not None:
        profile.enable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    ok = await send(0, count)
    seconds = time.perf_counter() - started
    # The client's own CPU (the server runs in another process): a figure that a
    # machine shared with other work disturbs far less than the wall-clock rate.
    cpu = time.process_time() - cpu_started
    if profile is not None:
        profile.disable()
    unit = WORKLOADS[name][1]
    print(
        f"{name}: {ok:,} of {count:,} {unit} ok, {ok / seconds:,.0f} {unit}/s, "
        f"client CPU {cpu / max(ok, 1) * 1e6:,.0f} µs per {unit.rstrip('s')}",
        flush=True,
    )


def report(profile: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profile, stream=sys.stdout)
    # Before strip_dirs, while the paths still say which functions are aiosms's.
    print(f"\n--- aiosms functions by cumulative (top {top}) ---")
    stats.sort_stats("cumulative").print_stats(r"/aiosms/", top)
    stats.strip_dirs()
    for order in ("cumulative", "tottime"):
        print(f"\n--- top {top} by {order} ---")
        stats.sort_stats(order).print_stats(top)


def summarize(path: str, top: int) -> None:
    """Cumulative and own shares per function from py-spy's raw (collapsed) output.

    Shares are of the samples taken inside the event loop's callbacks (``Handle._run``
    on asyncio, ``unrolled_run`` on trio): the steady state, without start-up, imports
    and shutdown.
    """
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            frames = [_frame(f) for f in stack.split(";")] if stack else []
            if not any(f.startswith(_LOOP_FRAMES) for f in frames):
                continue
            count = int(count_text)
            total += count
            for frame in set(frames):
                cumulative[frame] += count
            own[frames[-1]] += count
    print(f"{total} samples inside the event loop's callbacks")
    print(f"\n--- own time, top {top} ---")
    for frame, count in own.most_common(top):
        print(f"{count / total:6.1%}  {frame}")
    print(f"\n--- cumulative, top {top} ---")
    for frame, count in cumulative.most_common(top):
        print(f"{count / total:6.1%}  {frame}")
    print(f"\n--- aiosms functions, cumulative, top {top} ---")
    mine = [(f, c) for f, c in cumulative.most_common() if "[aiosms]" in f]
    for frame, count in mine[:top]:
        print(f"{count / total:6.1%}  {frame}")


#: The frames under which an event loop runs its tasks: asyncio's callbacks, trio's
#: run loop (which includes its scheduler's own work).
_LOOP_FRAMES = ("Handle._run ", "unrolled_run ")


def _frame(text: str) -> str:
    # py-spy: "function (path/to/file.py:line)"; keep the function and the file.
    name, _, where = text.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    mark = " [aiosms]" if path.startswith("aiosms/") or "/aiosms/" in path else ""
    return f"{name} ({short}){mark}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._profile")
    parser.add_argument("workload", nargs="?", choices=sorted(WORKLOADS))
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--api", choices=("batcher", "send_many"), default="batcher")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="requests in flight for the fanout workloads"
    )
    parser.add_argument(
        "--default-limits",
        action="store_true",
        help="fanout: aiosms's own pool instead of one sized to the concurrency",
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--url", help="a benchmark server already running (its --latency applies), not a new one"
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after one warm-up")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-cprofile", action="store_true", help="for an outside sampler")
    parser.add_argument("--summarize", metavar="PY_SPY_RAW", help="summarise py-spy raw output")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.top)
        return
    if args.workload is None:
        parser.error("name a workload or give --summarize")
    count = args.count or WORKLOADS[args.workload][0]
    print(f"client {pin_to_cpu(1)}", flush=True)
    profile = None if args.no_cprofile else cProfile.Profile()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(ServerProcess(latency=0.0, cpu=0)).url
        anyio.run(
            workload,
            args.workload,
            url.rstrip("/"),
            count,
            args.api,
            args.concurrency,
            not args.default_limits,
            profile,
            args.repeats,
            backend=args.backend,
        )
    if profile is not None:
        report(profile, args.top)


if __name__ == "__main__":
    main()
