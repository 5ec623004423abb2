"""How a command's run ends: exit codes from results, errors and signals, in real processes."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

SCRIPT = """
import sys, anyio
from aiosms.cli._run import run
from aiosms.cli._settings import Settings

async def body():
    print("started", flush=True)
    try:
        await anyio.sleep(30)
    finally:
        print("cleaned up", flush=True)

run(Settings(backend=sys.argv[1]), body, interruptible=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interruptible_run_cleans_up_and_exits_5_on_a_signal(
    backend: str, signum: signal.Signals
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 5, err
        assert "cleaned up" in out
        assert signum.name in err
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_a_run_that_finishes_exits_with_the_code_it_returns() -> None:
    script = (
        "from aiosms.cli._run import run\n"
        "from aiosms.cli._settings import Settings\n"
        "from aiosms.cli._exit import ExitCode\n"
        "async def body():\n"
        "    return ExitCode.REJECTED\n"
        "run(Settings(), body, interruptible=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 3, done.stderr
