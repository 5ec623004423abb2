"""The ``million`` scenario's child process: ``send_all`` over a generator, peak RSS its own.

Run by the harness as ``python -m benchmarks._million --base-url URL --count N``
(through ``LAUNCHER``, see there); prints one JSON line with the rate, the receipts
counted, and ``ru_maxrss`` after imports and at the end, with the kernel's own
high-water mark (``VmHWM``) beside it as a check. It stops by itself if its standard
input closes (the harness is gone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator

import anyio

import aiosms
from benchmarks._common import MYSMS_SENDER, TEXT, phone
from benchmarks._server import MYSMS_PASSWORD, MYSMS_USER

# ru_maxrss is in KiB on Linux, in bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024

#: Starts the child from a small process. Linux carries the parent's memory high-water
#: mark into a child's ``ru_maxrss`` when it execs straight from the parent's memory
#: (vfork/posix_spawn, as ``subprocess`` does): spawned from the harness, which is
#: already ~100 MB, the child's own ``ru_maxrss`` would start there. A bare
#: ``python -S`` in between is ~10 MB, below anything the child itself uses.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT


def high_water_bytes() -> int | None:
    """The kernel's peak RSS of this process's memory (Linux ``VmHWM``), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def exit_with_parent() -> None:
    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def messages(count: int) -> Iterator[aiosms.Message]:
    for index in range(count):
        yield aiosms.Message(to=phone(index), text=TEXT, key=index)


async def run(base_url: str, count: int, packet: int, fmt: str) -> dict[str, float | int]:
    sms = aiosms.MySms(
        username=MYSMS_USER,
        password=MYSMS_PASSWORD,
        sender=MYSMS_SENDER,
        base_url=f"{base_url}/rest/sms/",
        format=fmt,  # type: ignore[arg-type]
    )
    received = ok = 0
    cpu = time.process_time()
    started = time.perf_counter()
    async with sms, aiosms.Batcher(sms, max_batch_size=packet) as batcher:
        async for receipt in batcher.send_all(messages(count)):
            received += 1
            ok += receipt.ok
    seconds = time.perf_counter() - started
    return {
        "count": count,
        "received": received,
        "ok": ok,
        "seconds": seconds,
        "client_cpu": (time.process_time() - cpu) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--packet", type=int, default=1000)
    parser.add_argument("--format", default="json", choices=("json", "xml"))
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args()
    if args.watch_stdin:
        exit_with_parent()
    baseline, baseline_hwm = peak_rss_bytes(), high_water_bytes()
    result: dict[str, float | int | None] = dict(
        anyio.run(run, args.base_url, args.count, args.packet, args.format)
    )
    result["baseline_rss"] = baseline
    result["peak_rss"] = peak_rss_bytes()
    result["baseline_hwm"] = baseline_hwm
    result["peak_hwm"] = high_water_bytes()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
