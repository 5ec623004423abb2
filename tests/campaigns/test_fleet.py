"""One campaign, three worker processes, one PostgreSQL, one fake gateway process over
loopback; one worker is SIGKILLed mid-campaign and another SIGSTOPped past its lease,
then SIGCONTinued. The gateway's ledger (which worker sent what: each sends under
its own sender name) is checked against the journal.

Expected values come from the contract (DESIGN.md, "Campaigns"): at most once; a
worker paused past its lease sends nothing it no longer owns; a dead worker's
claimed rows are sent by the others and only what it had ``sending`` may end
``unknown``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, PostgresJournal

DRIVER = str(Path(__file__).with_name("fleet_driver.py"))
ROWS = 3000
LEASE = 1.5
LATENCY = 0.05
SENDERS = ["Alpha", "Bravo", "Charlie"]
BACKENDS = ["asyncio", "trio", "asyncio"]


@contextmanager
def started(args: list[str], **options: object) -> Iterator[subprocess.Popen[str]]:
    """A child process, killed by its handle on the way out if it still runs."""
    process = subprocess.Popen(
        [sys.executable, DRIVER, *args], text=True, stdout=subprocess.PIPE, **options
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def query(conninfo: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo) as db:
        return list(db.execute(sql, params).fetchall())


def create(conninfo: str) -> None:
    import anyio

    async def go() -> None:
        async with PostgresJournal(conninfo) as journal:
            await Campaign.create(
                journal,
                "fleet",
                [Message(to=f"7912{i:07d}", text=f"Sale {i}", key=f"r{i}") for i in range(ROWS)],
            )

    anyio.run(go)


@pytest.mark.timeout(150)
def test_a_fleet_survives_a_killed_and_a_stopped_worker_sending_each_row_at_most_once(
    pg_conninfo: str, tmp_path: Path
) -> None:
    create(pg_conninfo)
    ledger_path = tmp_path / "ledger.json"
    with ExitStack() as stack:
        gateway = stack.enter_context(
            started(["gateway", str(ledger_path), str(LATENCY)], stdin=subprocess.PIPE)
        )
        assert gateway.stdout is not None
        line = gateway.stdout.readline()
        assert line.startswith("URL "), line
        url = line.split()[1]
        workers = [
            stack.enter_context(
                started(
                    ["worker", pg_conninfo, "fleet", url, sender, str(LEASE), backend],
                    stdin=subprocess.DEVNULL,
                )
            )
            for sender, backend in zip(SENDERS, BACKENDS, strict=True)
        ]
        killed, stopped, steady = workers

        def accepted() -> int:
            (count,) = query(
                pg_conninfo, "SELECT COUNT(*) FROM aiosms_messages WHERE state = 'accepted'"
            )[0]
            return int(count)  # type: ignore[call-overload]

        def owner_of(process: subprocess.Popen[str]) -> str:
            rows = query(
                pg_conninfo, "SELECT owner FROM aiosms_workers WHERE pid = %s", process.pid
            )
            return str(rows[0][0]) if rows else ""

        wait_for(lambda: accepted() >= 300, timeout=60, what="the campaign to get going")
        wait_for(lambda: all(owner_of(w) for w in workers), timeout=30, what="heartbeats")
        owners = {w.pid: owner_of(w) for w in workers}

        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        os.kill(stopped.pid, signal.SIGSTOP)
        # Once the killed worker is gone, its `sending` rows change only through the reaper.
        killed_sending = int(
            query(  # type: ignore[call-overload]
                pg_conninfo,
                "SELECT COUNT(*) FROM aiosms_messages WHERE state = 'sending' AND owner = %s",
                owners[killed.pid],
            )[0][0]
        )
        time.sleep(3 * LEASE)  # past the stopped worker's lease: the others reap it
        stopped_rows_reaped = query(
            pg_conninfo,
            "SELECT COUNT(*) FROM aiosms_workers WHERE owner = %s",
            owners[stopped.pid],
        )[0][0]
        os.kill(stopped.pid, signal.SIGCONT)

        summaries = {}
        for process in (stopped, steady):
            out, _ = process.communicate(timeout=90)
            assert process.returncode == 0
            summaries[process.pid] = json.loads(out.strip().splitlines()[-1])
        assert gateway.stdin is not None
        gateway.stdin.close()
        gateway.wait(timeout=30)

    ledger = json.loads(ledger_path.read_text())
    rows = query(
        pg_conninfo,
        "SELECT phone, state, owner, message_id, reason FROM aiosms_messages ORDER BY id",
    )
    by_phone = {r[0]: r for r in rows}
    sender_of = {owners[w.pid]: s for w, s in zip(workers, SENDERS, strict=True)}
    counts = Counter(str(r[1]) for r in rows)

    # At most once: the gateway never took a number twice.
    assert all(n == 1 for n in Counter(e[1] for e in ledger).values())
    # Everything ended: nothing pending, claimed or sending; the dead worker's claimed
    # rows were sent by the others.
    assert counts["accepted"] + counts["unknown"] == ROWS
    # The stopped worker was reaped while it slept, and sent nothing it no longer owned:
    # each message the gateway took came from the worker that owns its row.
    assert stopped_rows_reaped == 0
    assert all(sender_of[str(by_phone[phone][2])] == sender for _, phone, sender in ledger)
    # Only what the killed worker had in flight may be unknown.
    unknown = [r for r in rows if r[1] == "unknown"]
    assert len(unknown) <= killed_sending
    assert {(r[2], r[4]) for r in unknown} <= {(owners[killed.pid], "worker lost")}
    # The journal and the ledger agree: every accepted row is in the ledger by its id,
    # and what else the ledger holds is the killed worker's unknown rows.
    ledger_ids = {e[0]: e[1] for e in ledger}
    accepted_rows = [r for r in rows if r[1] == "accepted"]
    assert all(ledger_ids.get(str(r[3])) == r[0] for r in accepted_rows)
    extra = {e[1] for e in ledger} - {r[0] for r in accepted_rows}
    assert extra <= {r[0] for r in unknown}
    assert len(ledger) == counts["accepted"] + len(extra)
    assert all(s["state"] in ("done", "incomplete") for s in summaries.values())
    assert sum(s["sent"] for s in summaries.values()) > 0
