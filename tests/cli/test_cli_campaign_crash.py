"""`aiosms campaign run` killed with SIGKILL mid-campaign, then run again to the end.

The command runs in its own process against `aiosms fake serve` in another one, over
real HTTP on 127.0.0.1; the fake writes every message it accepts to a ledger file. After
every kill the journal is read before the next run. Nothing may be accepted twice, every
valid row must end settled, and the only unknowns allowed are rows that were on the wire
when a kill hit.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROWS = 50_000
KILLS = 3
NAME = "crash"
PACKET = 250


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiosms.cli", *args]


def states(journal: Path) -> dict[str, int]:
    """The campaign's rows per state, as the journal keeps them counted."""
    with contextlib.closing(sqlite3.connect(journal, timeout=10)) as db:
        return dict(
            db.execute(
                "SELECT c.state, c.n FROM aiosms_counts AS c "
                "JOIN aiosms_campaigns AS k ON k.id = c.campaign WHERE k.name = ?",
                (NAME,),
            )
        )


def write_rows(path: Path) -> None:
    lines = ["id,phone"]
    lines += [
        f"k{i},+7 900 {i // 10_000:03d}-{i // 100 % 100:02d}-{i % 100:02d}" for i in range(ROWS)
    ]
    lines.append("bad,12345")  # not a number: skipped at import
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@pytest.mark.timeout(180)
def test_killed_campaign_runs_never_send_a_row_twice_and_settle_every_row(tmp_path: Path) -> None:
    rows, journal, ledger = tmp_path / "rows.csv", tmp_path / "j.db", tmp_path / "ledger.jsonl"
    write_rows(rows)
    port = free_port()
    server = subprocess.Popen(
        command(
            "--output", "json", "fake", "serve", "--port", str(port), "--latency", "0.02",
            "--balance", "1000000", "--ledger-file", str(ledger),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    runner: subprocess.Popen[Any] | None = None
    try:
        assert server.stdout is not None
        fake = json.loads(server.stdout.readline())
        created = subprocess.run(
            command(
                "--journal", str(journal), "--output", "json", "campaign", "create", NAME,
                "--csv", str(rows), "--key-column", "id", "--template", "code {id}",
            ),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["added"] == ROWS
        env = {
            **os.environ,
            "AIOSMS_MYSMS_USERNAME": fake["username"],
            "AIOSMS_MYSMS_PASSWORD": fake["password"],
        }
        run = command(
            "--gateway", "mysms", "--base-url", fake["base_url"], "--journal", str(journal),
            "--sender", "aiosms", "--output", "json",
            "campaign", "run", NAME, "--confirm", NAME,
            "--packet-size", str(PACKET), "--max-concurrency", "2",
        )  # fmt: skip
        rng = random.Random()
        in_flight_at_kills = 0
        for _ in range(KILLS):
            before = states(journal).get("accepted", 0)
            runner = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            # Some progress first, so the kill lands in the middle of the work.
            while states(journal).get("accepted", 0) < before + PACKET:
                assert runner.poll() is None, runner.communicate()
                assert time.monotonic() < deadline, "no progress within 30 s"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            runner.send_signal(signal.SIGKILL)
            runner.communicate(timeout=10)
            assert runner.returncode == -signal.SIGKILL
            # What the journal says was on the wire when the worker died: the rows of
            # packets recorded as sending and not settled.
            status = subprocess.run(
                command("--journal", str(journal), "--output", "json", "campaign", "status", NAME),
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            now = json.loads(status.stdout)["counts"]
            in_flight_at_kills += now["sending"]
            assert now["pending"] + now["claimed"] > 0, "the campaign ended before the kill"

        final = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
        summary = json.loads(final.stdout)
        assert summary["state"] == "done"
        assert final.returncode == (4 if summary["unknown"] else 0), final.stderr

        report = subprocess.run(
            command("--journal", str(journal), "--output", "json", "campaign", "report", NAME),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert report.returncode == 0, report.stderr
        counts = json.loads(report.stdout)
    finally:
        if runner is not None:
            stop(runner)
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=10)
        finally:
            stop(server)

    sent = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    keys = [entry["text"].removeprefix("code ") for entry in sent]
    assert len(keys) == len(set(keys)), "the gateway accepted a row twice"

    # Each row's state and message id: its outcome's (a row of its own, or an entry of
    # the accepted outcomes its packet's record keeps), or the import's judgement.
    with contextlib.closing(sqlite3.connect(journal)) as db:
        by_state: dict[str, dict[str, str | None]] = {}
        for key, state, message_id in db.execute(
            "SELECT m.key, COALESCE(o.state, p.state, m.state), "
            "COALESCE(o.message_id, p.message_id) FROM aiosms_messages AS m "
            "LEFT JOIN aiosms_outcomes AS o ON o.id = m.id LEFT JOIN ("
            "SELECT json_extract(j.value, '$[0]') AS id, 'accepted' AS state, "
            "json_extract(j.value, '$[1]') AS message_id FROM aiosms_attempts AS a, "
            "json_each(a.accepted) AS j WHERE a.accepted IS NOT NULL) AS p ON p.id = m.id"
        ):
            by_state.setdefault(state, {})[key] = message_id
        kept = {state: n for state, n in db.execute("SELECT state, n FROM aiosms_counts") if n}
    assert set(by_state) <= {"accepted", "rejected", "unknown", "skipped"}
    assert kept == {state: len(found) for state, found in by_state.items()}
    assert list(by_state["skipped"]) == ["bad"]
    unknown = by_state.get("unknown", {})
    assert len(unknown) <= in_flight_at_kills
    accepted = by_state.get("accepted", {})
    ledger_ids = {key: entry["id"] for key, entry in zip(keys, sent, strict=True)}
    # Every accepted row is in the ledger under the id the journal holds; the ledger's
    # other messages are rows whose reply a kill cut off (unknown), never anything else.
    assert {key: ledger_ids.get(key) for key in accepted} == accepted
    assert set(ledger_ids) - set(accepted) <= set(unknown)
    assert len(accepted) + len(by_state.get("rejected", {})) + len(unknown) == ROWS
    assert counts["accepted"] == len(accepted) == len(sent) - len(set(ledger_ids) & set(unknown))
    assert counts["unknown"] == len(unknown)
    assert fake["password"].encode() not in journal.read_bytes()
