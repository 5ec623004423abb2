"""``python -m benchmarks``: aiosms against hand-written httpx and aiohttp code, on loopback.

Starts the fake gateway server(s) in a separate process pinned to CPU 0, pins
itself to CPU 1, runs the chosen scenarios and prints one Markdown table each,
then the targets. Options: ``--quick`` (tiny counts, one repeat: a smoke run),
``--repeats N`` (default 3), ``--only NAME[,NAME]`` (scenarios: ceiling, fanout,
packets, p50, callers, million, campaign, latency50, latency; fleet, which needs
PostgreSQL, runs only when named), ``--campaign-rows N``
(rows of the campaign scenario, default 1,000,000).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from importlib import metadata

import anyio

from benchmarks._common import message_pool, table
from benchmarks._drivers import ORPHANS
from benchmarks._harness import CAMPAIGN_ROWS, Context, Scenario
from benchmarks._scenarios import load
from benchmarks._server import ROOT, ServerProcess, pin_to_cpu
from benchmarks._targets import report

SERVER_CPU = 0
CLIENT_CPU = 1
PACKAGES = ("aiosms", "httpx", "httpcore", "h11", "aiohttp", "httpx-aiohttp", "anyio", "xmltodict")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``args.scenarios`` is the chosen scenarios in their order."""
    scenarios = load()
    names = [s.name for s in scenarios]
    aliases = {alias: s.name for s in scenarios for alias in s.aliases}
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark aiosms against hand-written httpx and aiohttp code on 127.0.0.1.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repeat (smoke)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per row (default 3)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios: {', '.join(names)}")
    parser.add_argument(
        "--campaign-rows",
        type=int,
        default=CAMPAIGN_ROWS,
        help=f"rows of the campaign scenario (default {CAMPAIGN_ROWS:,})",
    )
    args = parser.parse_args(argv)
    if args.campaign_rows < 1:
        parser.error("--campaign-rows must be at least 1")
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    only = [aliases.get(name, name) for name in only]
    unknown = sorted(set(only) - set(names))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; choose from {tuple(names)}")
    args.scenarios = [s for s in scenarios if s.name in only or (not only and not s.named_only)]
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def aiosms_revision() -> str:
    """The commit the measured aiosms comes from, and whether its code differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "aiosms"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{head} (aiosms/ modified)" if dirty else head


def describe(
    args: argparse.Namespace, client_pin: str, revision: str, servers: list[ServerProcess]
) -> None:
    print("## aiosms benchmarks\n")
    rows = [
        ["command", "python -m benchmarks " + " ".join(sys.argv[1:])],
        ["CPU", f"{cpu_model()}, {os.cpu_count()} logical CPU(s)"],
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["platform", platform.platform()],
        ["packages", ", ".join(f"{p} {version(p)}" for p in PACKAGES)],
        ["aiosms commit", revision],
        ["client", client_pin],
    ]
    rows += [
        [f"server (latency {s.latency * 1000:.0f} ms)", f"pid {s.pid}, {s.pinning}"]
        for s in servers
    ]
    chosen = ", ".join(s.name for s in args.scenarios)
    rows.append(["scenarios", f"{chosen}; repeats {args.repeats}"])
    print(table(["", ""], rows))


async def run(ctx: Context, scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        started = time.perf_counter()
        await scenario.run(ctx)
        print(f"\n({scenario.name}: {time.perf_counter() - started:.0f} s)", flush=True)
    # Every scenario's targets, run or not: those not run say so.
    report(ctx, [target for scenario in load() for target in scenario.targets])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    client_pin = pin_to_cpu(CLIENT_CPU)
    revision = aiosms_revision()
    started = time.perf_counter()
    with ExitStack() as stack:
        latencies = sorted({0.0, *(lat for s in args.scenarios for lat in s.latencies)})
        by_latency = {
            latency: stack.enter_context(ServerProcess(latency=latency, cpu=SERVER_CPU))
            for latency in latencies
        }
        servers = list(by_latency.values())
        describe(args, client_pin, revision, servers)
        ctx = Context(
            quick=args.quick,
            repeats=args.repeats,
            servers=by_latency,
            pool=message_pool(),
            campaign_rows=args.campaign_rows,
        )
        try:
            anyio.run(run, ctx, args.scenarios, backend="asyncio")
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: servers stopped ({ORPHANS.count} receipts of withdrawn "
                "or in-flight messages dropped)",
                file=sys.stderr,
            )
            return 130
    for s in servers:
        if s.stats is not None:
            requests, messages, connections = s.stats
            print(
                f"\nserver (latency {s.latency * 1000:.0f} ms) served {requests:,} requests, "
                f"{messages:,} messages on {connections:,} connections"
            )
    if aiosms_revision() != revision:
        print(f"\nWARNING: aiosms changed during the run ({revision} → {aiosms_revision()})")
    print(f"total: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
