"""One 100,000-row campaign, four `aiosms worker` processes, one PostgreSQL, and
`aiosms fake serve` over loopback as the gateway, writing a ledger file. One worker
is SIGKILLed mid-campaign; another is SIGSTOPped past its lease, then SIGCONTinued.
Each worker sends under its own sender name, so the ledger says who sent what.

Expected values come from the contract (DESIGN.md, "Campaigns"): at most once; a
worker paused past its lease sends nothing it no longer owns; a dead worker's
claimed rows are sent by the others and only what it had ``sending`` may end
``unknown``; the journal's counts equal the ledger's.
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
from typing import Any

import psycopg
import pytest

ROWS = 100_000
LEASE = 2.0
LATENCY = 0.05
PACKET = 500
SENDERS = ["Alpha", "Bravo", "Charlie", "Delta"]
BACKENDS = ["asyncio", "trio", "asyncio", "trio"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiosms.cli", *args]


@contextmanager
def started(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """An ``aiosms`` process, continued and killed by its handle on the way out."""
    process = subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def query(conninfo: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as db:
        return list(db.execute(sql, params).fetchall())


def count(conninfo: str, sql: str, *params: object) -> int:
    return int(query(conninfo, sql, *params)[0][0])


# Some 40-70 s on a shared 2-CPU machine; the bounds leave room for a busy one.
@pytest.mark.timeout(360)
def test_a_fleet_survives_a_killed_and_a_stopped_worker_sending_each_row_at_most_once(
    pg_conninfo: str, tmp_path: Path
) -> None:
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text(
        "phone\n" + "".join(f"7912{i:07d}\n" for i in range(ROWS)), encoding="utf-8"
    )
    created = subprocess.run(
        command("--journal", pg_conninfo, "campaign", "create", "fleet", "--csv", str(rows_csv),
                "--text", "Sale"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    ledger_path = tmp_path / "ledger.jsonl"
    serve = [
        "--output", "json", "fake", "serve", "--latency", str(LATENCY),
        "--balance", "1000000000", "--ledger-file", str(ledger_path),
    ]  # fmt: skip
    with ExitStack() as stack:
        gateway = stack.enter_context(started(serve))
        assert gateway.stdout is not None
        served = json.loads(gateway.stdout.readline())
        env = {
            "AIOSMS_MYSMS_USERNAME": served["username"],
            "AIOSMS_MYSMS_PASSWORD": served["password"],
        }

        def worker(sender: str, backend: str) -> list[str]:
            return [
                "--backend", backend, "--journal", pg_conninfo,
                "--base-url", served["base_url"], "--sender", sender, "--output", "json",
                "worker", "--campaign", "fleet", "--until-done", "--poll", "0.2",
                "--lease", str(LEASE), "--packet-size", str(PACKET), "--max-concurrency", "2",
            ]  # fmt: skip

        workers = [
            stack.enter_context(started(worker(sender, backend), env))
            for sender, backend in zip(SENDERS, BACKENDS, strict=True)
        ]
        killed, stopped, *steady = workers

        def owner_of(process: subprocess.Popen[str]) -> str:
            found = query(pg_conninfo, "SELECT owner FROM aiosms_workers WHERE pid = %s",
                          process.pid)  # fmt: skip
            return str(found[0][0]) if found else ""

        wait_for(lambda: all(owner_of(w) for w in workers), timeout=60, what="heartbeats")
        owners = {w.pid: owner_of(w) for w in workers}
        wait_for(
            lambda: count(pg_conninfo, "SELECT COUNT(*) FROM aiosms_messages "
                          "WHERE state = 'accepted'") >= ROWS // 5,
            timeout=120, what="the campaign to get going",
        )  # fmt: skip
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        os.kill(stopped.pid, signal.SIGSTOP)
        # Once the killed worker is gone, its `sending` rows change only through the reaper
        # (which may already have come, on a busy machine).
        killed_sending = count(
            pg_conninfo,
            "SELECT COUNT(*) FROM aiosms_messages WHERE owner = %s AND (state = 'sending' "
            "OR (state = 'unknown' AND reason = 'worker lost'))",
            owners[killed.pid],
        )
        time.sleep(3 * LEASE)  # past the stopped worker's lease: the others reap it
        # On a busy machine the others' next heartbeat may come later: wait for it, bounded.
        wait_for(
            lambda: not count(
                pg_conninfo, "SELECT COUNT(*) FROM aiosms_workers WHERE owner = %s",
                owners[stopped.pid],
            ),
            timeout=60, what="the stopped worker to be reaped",
        )  # fmt: skip
        os.kill(stopped.pid, signal.SIGCONT)

        tallies = {}
        for process in (stopped, *steady):
            out, err = process.communicate(timeout=200)
            assert process.returncode == 0, err
            tallies[process.pid] = json.loads(out)
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=30)

    ledger = [json.loads(line) for line in ledger_path.read_text(encoding="utf-8").splitlines()]
    rows = query(
        pg_conninfo,
        "SELECT phone, state, owner, message_id, reason FROM aiosms_messages ORDER BY id",
    )
    by_phone = {r[0]: r for r in rows}
    sender_of = {owners[w.pid]: s for w, s in zip(workers, SENDERS, strict=True)}
    counts = Counter(str(r[1]) for r in rows)

    # At most once: the gateway never took a number twice.
    assert max(Counter(e["phone"] for e in ledger).values()) == 1
    # Everything ended: nothing pending, claimed or sending; the dead worker's claimed
    # rows were sent by the others.
    assert counts["accepted"] + counts["unknown"] == ROWS
    # The stopped worker (reaped while it slept: waited for above) sent nothing it no
    # longer owned: each message the gateway took came from the worker that owns its row.
    assert all(sender_of[str(by_phone[e["phone"]][2])] == e["sender"] for e in ledger)
    # Only what the killed worker had in flight may be unknown.
    unknown = [r for r in rows if r[1] == "unknown"]
    assert len(unknown) <= killed_sending
    assert {(r[2], r[4]) for r in unknown} <= {(owners[killed.pid], "worker lost")}
    # The journal and the ledger agree: every accepted row is in the ledger by its id,
    # and what else the ledger holds is the killed worker's unknown rows.
    ledger_ids = {e["id"]: e["phone"] for e in ledger}
    accepted_rows = [r for r in rows if r[1] == "accepted"]
    assert all(ledger_ids.get(str(r[3])) == r[0] for r in accepted_rows)
    extra = {e["phone"] for e in ledger} - {r[0] for r in accepted_rows}
    assert extra <= {r[0] for r in unknown}
    assert len(ledger) == counts["accepted"] + len(extra)
    # Each surviving worker's own tally is what the ledger credits its sender with.
    by_sender = Counter(e["sender"] for e in ledger)
    for process in (stopped, *steady):
        sender = sender_of[owners[process.pid]]
        assert sum(t["sent"] for t in tallies[process.pid]) == by_sender[sender]
    assert all(by_sender[s] > 0 for s in SENDERS)
