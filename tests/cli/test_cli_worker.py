"""`aiosms worker` as real processes on a PostgreSQL journal, beside `aiosms fake serve`.

The fake gateway runs in its own process and writes every message it accepts to a
ledger file (one flushed JSON line each, with the sender name, so the ledger says
which process sent what). Signals are real signals sent by PID. Expected values come
from the contract: SIGTERM drains (the packets on the wire settle, claimed rows go
back to pending, exit 0); a second signal stops at once (exit 5); nothing is ever
accepted twice; an account-level refusal pauses the campaign for every worker.
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
from click.testing import CliRunner
from postgres_support import Cluster, running_cluster

from aiosms.cli._app import cli


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture
def conninfo(cluster: Cluster) -> str:
    return cluster.new_database()


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiosms.cli", *args]


@contextmanager
def started(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """An ``aiosms`` process, killed by its handle on the way out if it still runs."""
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
            process.kill()
        process.communicate(timeout=30)


@contextmanager
def gateway(
    tmp_path: Path, *, latency: float, balance: int = 10**6
) -> Iterator[tuple[dict[str, Any], Path]]:
    """``aiosms fake serve`` with a ledger file: (its credentials and URL, the ledger)."""
    ledger = tmp_path / "ledger.jsonl"
    args = [
        "--output", "json", "fake", "serve", "--latency", str(latency),
        "--balance", str(balance), "--ledger-file", str(ledger),
    ]  # fmt: skip
    with started(args) as server:
        assert server.stdout is not None
        served = json.loads(server.stdout.readline())
        yield served, ledger
        server.send_signal(signal.SIGTERM)


def sender_env(served: dict[str, Any]) -> dict[str, str]:
    return {
        "AIOSMS_MYSMS_USERNAME": served["username"],
        "AIOSMS_MYSMS_PASSWORD": served["password"],
    }


def worker_args(
    conninfo: str, served: dict[str, Any], sender: str, *more: str, backend: str = "asyncio"
) -> list[str]:
    return [
        "--backend", backend, "--journal", conninfo, "--base-url", served["base_url"],
        "--sender", sender, "--output", "json", "worker", "--poll", "0.2", *more,
    ]  # fmt: skip


def create(conninfo: str, tmp_path: Path, name: str, rows: int, *, first: int = 0) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(
        "phone\n" + "".join(f"+7900{i:07d}\n" for i in range(first, first + rows)),
        encoding="utf-8",
    )
    done = subprocess.run(
        command("--journal", conninfo, "campaign", "create", name, "--csv", str(path),
                "--text", "hi"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def states(conninfo: str, name: str | None = None) -> Counter[str]:
    query = "SELECT m.state, COUNT(*) FROM aiosms_messages m"
    params: tuple[str, ...] = ()
    if name is not None:
        query += " JOIN aiosms_campaigns c ON c.id = m.campaign WHERE c.name = %s"
        params = (name,)
    with psycopg.connect(conninfo) as db:
        return Counter(dict(db.execute(query + " GROUP BY m.state", params).fetchall()))


def ledger_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def assert_sent_at_most_once(ledger: list[dict[str, Any]]) -> None:
    assert ledger, "the gateway accepted nothing"
    assert max(Counter(e["phone"] for e in ledger).values()) == 1


@pytest.mark.timeout(90)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_drains_the_worker_releases_its_claims_and_exits_0(
    conninfo: str, tmp_path: Path, backend: str
) -> None:
    create(conninfo, tmp_path, "slow", 400)
    with gateway(tmp_path, latency=0.2) as (served, ledger):
        args = worker_args(
            conninfo, served, "Shop", "--packet-size", "10", "--max-concurrency", "1",
            backend=backend,
        )  # fmt: skip
        with started(args, sender_env(served)) as worker:
            wait_for(lambda: len(ledger_of(ledger)) >= 20, timeout=30, what="some sending")
            assert worker.poll() is None
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "SIGTERM" in err
    accepted = ledger_of(ledger)
    assert_sent_at_most_once(accepted)
    counts = states(conninfo)
    # Drained: the packet on the wire settled; nothing is left claimed, sending or unknown.
    assert (counts["claimed"], counts["sending"], counts["unknown"]) == (0, 0, 0)
    assert counts["accepted"] == len(accepted)
    assert counts["pending"] == 400 - len(accepted) > 0
    assert json.loads(out) == [{"campaign": "slow", "runs": 1, "sent": len(accepted)}]
    with psycopg.connect(conninfo) as db:
        assert db.execute("SELECT COUNT(*) FROM aiosms_workers").fetchone() == (0,)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_second_sigint_stops_the_worker_at_once_with_exit_5(
    conninfo: str, tmp_path: Path, backend: str
) -> None:
    create(conninfo, tmp_path, "stuck", 100)
    # Each request takes 20 s: a drain would wait for it, stopping at once does not.
    with gateway(tmp_path, latency=20) as (served, ledger):
        args = worker_args(
            conninfo, served, "Shop", "--packet-size", "10", "--max-concurrency", "1",
            backend=backend,
        )  # fmt: skip
        with started(args, sender_env(served)) as worker:
            wait_for(
                lambda: states(conninfo)["sending"] > 0, timeout=30, what="a packet on the wire"
            )
            worker.send_signal(signal.SIGINT)
            time.sleep(0.5)
            assert worker.poll() is None, "one SIGINT drains: the packet is still on the wire"
            began = time.monotonic()
            worker.send_signal(signal.SIGINT)
            _, err = worker.communicate(timeout=30)
            took = time.monotonic() - began
    assert worker.returncode == 5, err
    assert "again" in err
    assert took < 10
    counts = states(conninfo)
    # Claimed rows went back; the packet that was on the wire stays `sending` until a
    # later run reaps it as unknown; nothing was accepted.
    assert counts["claimed"] == 0
    assert counts["sending"] == 10
    assert counts["pending"] == 90
    assert ledger_of(ledger) == []


@pytest.mark.timeout(120)
def test_campaign_run_and_a_worker_share_one_campaign_sending_each_row_once(
    conninfo: str, tmp_path: Path
) -> None:
    rows = 2000
    create(conninfo, tmp_path, "shared", rows)
    with gateway(tmp_path, latency=0.05) as (served, ledger):
        env = sender_env(served)
        work = worker_args(
            conninfo, served, "Worker", "--until-done", "--packet-size", "20",
            "--max-concurrency", "1",
        )  # fmt: skip
        beside = [
            "--journal", conninfo, "--base-url", served["base_url"], "--sender", "Runner",
            "--output", "json", "campaign", "run", "shared", "--confirm", "shared",
            "--packet-size", "20", "--max-concurrency", "1",
        ]  # fmt: skip
        with started(work, env) as worker, started(beside, env) as runner:
            worker_out, worker_err = worker.communicate(timeout=90)
            runner_out, runner_err = runner.communicate(timeout=90)
    assert worker.returncode == 0, worker_err
    assert runner.returncode == 0, runner_out + runner_err
    accepted = ledger_of(ledger)
    assert_sent_at_most_once(accepted)
    assert len(accepted) == rows
    by_sender = Counter(e["sender"] for e in accepted)
    assert by_sender["Worker"] > 0
    assert by_sender["Runner"] > 0
    assert json.loads(worker_out)[0]["sent"] == by_sender["Worker"]
    assert states(conninfo) == Counter({"accepted": rows})


@pytest.mark.timeout(90)
def test_a_worker_picks_up_campaigns_created_and_resumed_after_it_started(
    conninfo: str, tmp_path: Path
) -> None:
    subprocess.run(
        command("--journal", conninfo, "campaign", "init"), check=True, capture_output=True
    )
    with gateway(tmp_path, latency=0.0) as (served, ledger):
        args = worker_args(conninfo, served, "Shop", "--packet-size", "10")
        with started(args, sender_env(served)) as worker:
            time.sleep(0.5)
            create(conninfo, tmp_path, "later", 50)
            wait_for(lambda: states(conninfo, "later")["accepted"] == 50, timeout=30, what="later")
            create(conninfo, tmp_path, "held", 30, first=1000)
            subprocess.run(
                command("--journal", conninfo, "campaign", "pause", "held"),
                check=True, capture_output=True,
            )  # fmt: skip
            time.sleep(1.0)
            held_before = states(conninfo, "held")["accepted"]
            subprocess.run(
                command("--journal", conninfo, "campaign", "resume", "held"),
                check=True, capture_output=True,
            )  # fmt: skip
            wait_for(lambda: states(conninfo, "held")["accepted"] == 30, timeout=30, what="held")
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    # Paused before the worker looked again: nothing of it went out until resumed
    # (the worker may have taken up to one poll's worth before the pause landed).
    assert held_before in (0, 30)
    assert_sent_at_most_once(ledger_of(ledger))
    assert {r["campaign"]: r["sent"] for r in json.loads(out)} == {"later": 50, "held": 30}


@pytest.mark.timeout(90)
def test_running_out_of_funds_pauses_the_campaign_for_every_worker_process(
    conninfo: str, tmp_path: Path
) -> None:
    create(conninfo, tmp_path, "funds", 400)
    # 1.5 per message: 60 messages' worth of money.
    with gateway(tmp_path, latency=0.05, balance=90) as (served, ledger):
        env = sender_env(served)
        processes = []
        with ExitStack() as stack:
            for sender in ("Alpha", "Bravo"):
                args = worker_args(
                    conninfo, served, sender, "--until-done", "--packet-size", "5",
                    "--max-concurrency", "1",
                )  # fmt: skip
                processes.append(stack.enter_context(started(args, env)))
            results = [p.communicate(timeout=60) for p in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        # --until-done: the campaign is paused with rows left, so "paused" (5).
        assert process.returncode == 5, err
        assert "paused" in err
    with psycopg.connect(conninfo) as db:
        state, reason = db.execute("SELECT state, reason FROM aiosms_campaigns").fetchone() or (
            "",
            "",
        )
    assert state == "paused"
    assert "InsufficientFunds" in reason
    accepted = ledger_of(ledger)
    assert_sent_at_most_once(accepted)
    assert len(accepted) == 60
    counts = states(conninfo)
    assert (counts["claimed"], counts["sending"], counts["unknown"]) == (0, 0, 0)
    assert counts["accepted"] == 60
    assert counts["pending"] + counts["rejected"] == 340


def test_until_done_on_a_sqlite_journal_sends_everything_and_reports_what_it_sent(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path / "campaigns.db")
    rows = tmp_path / "rows.csv"
    rows.write_text("phone\n" + "".join(f"+7900000{i:04d}\n" for i in range(30)), "utf-8")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["--journal", journal, "campaign", "create", "local", "--csv", str(rows),
              "--text", "hi"], catch_exceptions=False,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    result = runner.invoke(
        cli, ["--journal", journal, "--gateway", "fake", "--output", "json", "worker",
              "--until-done", "--poll", "0.1"], catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"campaign": "local", "runs": 1, "sent": 30}]


def test_until_done_with_a_campaign_that_does_not_exist_exits_1_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--journal", str(tmp_path / "j.db"), "--gateway", "fake", "worker",
              "--campaign", "nope", "--until-done"], catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no campaign named 'nope'" in result.stderr


def test_until_done_with_one_named_campaign_missing_exits_1_having_sent_nothing(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path / "campaigns.db")
    rows = tmp_path / "rows.csv"
    rows.write_text("phone\n" + "".join(f"+7900000{i:04d}\n" for i in range(300)), "utf-8")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["--journal", journal, "campaign", "create", "local", "--csv", str(rows),
              "--text", "hi"], catch_exceptions=False,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    result = runner.invoke(
        cli, ["--journal", journal, "--gateway", "fake", "--output", "json", "worker",
              "--campaign", "local", "--campaign", "nope", "--until-done", "--poll", "0.1"],
        catch_exceptions=False,
    )  # fmt: skip
    # Exit 1 means nothing sent: the campaign that exists was not started either.
    assert result.exit_code == 1, result.output
    assert "no campaign named 'nope'" in result.stderr
    status = runner.invoke(
        cli, ["--journal", journal, "--output", "json", "campaign", "status", "local"],
        catch_exceptions=False,
    )  # fmt: skip
    assert json.loads(status.stdout)["counts"]["pending"] == 300
