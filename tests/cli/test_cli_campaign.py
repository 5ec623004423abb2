"""`aiosms campaign …` and `aiosms stoplist …` through click's runner, on real SQLite files.

Sending goes to aiosms's fake gateway: served by the command itself (`--gateway fake`),
or, where a test needs to shape the gateway's answers, served by the test on 127.0.0.1
(`--gateway fake --base-url URL`, or `--gateway mysms` with credentials in the
environment).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from aiosms.cli._app import cli
from aiosms.testing import FakeMySms, Fault
from aiosms.testing._server import serve_in_thread

BACKENDS = ["asyncio", "trio"]
EVERY_STATE = {"pending", "claimed", "sending", "accepted", "rejected", "unknown", "skipped"}

CUSTOMERS = """\
id,name,phone
a1,Anna,+7 900 000-00-01
b2,Boris,8 900 000-00-02
c3,Vera,not a number
d4,Gleb,+7 900 000-00-04
"""


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "campaigns.db"


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    return path


@pytest.fixture
def served() -> Iterator[tuple[FakeMySms, str]]:
    fake = FakeMySms(balance=100)
    with serve_in_thread(fake) as base_url:
        yield fake, base_url


def create(journal: Path, customers: Path, *more: str, name: str = "spring") -> Result:
    return invoke(
        "--journal", str(journal), "--output", "json", *more, "campaign", "create", name,
        "--csv", str(customers), "--key-column", "id", "--template", "Hi {name}, code {id}",
    )  # fmt: skip


def json_of(journal: Path, *args: str, code: int = 0) -> Any:
    result = invoke("--journal", str(journal), "--output", "json", *args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


# -- create -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_create_imports_valid_rows_and_records_invalid_ones_as_skipped(
    backend: str, journal: Path, customers: Path
) -> None:
    result = create(journal, customers, "--backend", backend)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "spring",
        "created": True,
        "added": 3,
        "already_present": 0,
        "skipped": 1,
        "pending": 3,
    }
    assert "added 3, already present 0, skipped 1" in result.stderr
    (skipped,) = json_of(journal, "campaign", "export", "spring", "--state", "skipped")
    assert skipped["key"] == "c3"
    assert "line 4" in skipped["reason"]  # the CSV line, header included


@pytest.mark.parametrize("backend", BACKENDS)
def test_importing_the_same_csv_again_adds_nothing(
    backend: str, journal: Path, customers: Path
) -> None:
    assert create(journal, customers).exit_code == 0
    again = create(journal, customers, "--backend", backend)
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {
        "name": "spring",
        "created": False,
        "added": 0,
        "already_present": 4,
        "skipped": 0,
        "pending": 3,
    }


def test_rows_are_keyed_by_line_number_without_a_key_column(journal: Path, customers: Path) -> None:
    result = invoke(
        "--journal", str(journal), "campaign", "create", "lines", "--csv", str(customers),
        "--text", "Sale today",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json_of(journal, "campaign", "export", "lines")
    assert sorted(row["key"] for row in rows) == ["2", "3", "4", "5"]
    assert {row["state"] for row in rows} == {"pending", "skipped"}


@pytest.mark.parametrize(
    "template", ["Hi {name.upper}", "Hi {name[0]}", "Hi {0}", "Hi {}", "Hi {name!r}", "{name:>9}"]
)
def test_template_fields_other_than_plain_column_names_are_refused(
    template: str, journal: Path, customers: Path
) -> None:
    result = invoke(
        "--journal", str(journal), "campaign", "create", "x", "--csv", str(customers),
        "--template", template,
    )  # fmt: skip
    assert result.exit_code == 2
    field = template[template.index("{") : template.index("}") + 1]
    assert field in result.stderr
    assert not journal.exists() or json_of(journal, "campaign", "list") == []


def test_a_template_field_missing_from_the_csv_is_named(journal: Path, customers: Path) -> None:
    result = invoke(
        "--journal", str(journal), "campaign", "create", "x", "--csv", str(customers),
        "--template", "Hi {surname}",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "{surname}" in result.stderr
    assert "id, name, phone" in result.stderr


def test_create_needs_exactly_one_of_text_and_template(journal: Path, customers: Path) -> None:
    base = ["--journal", str(journal), "campaign", "create", "x", "--csv", str(customers)]
    assert invoke(*base).exit_code == 2
    both = invoke(*base, "--text", "a", "--template", "b {name}")
    assert both.exit_code == 2
    assert "exactly one of --text and --template" in both.stderr


def test_a_missing_campaign_exits_1_naming_it(journal: Path) -> None:
    result = invoke("--journal", str(journal), "campaign", "status", "nope")
    assert result.exit_code == 1
    assert "no campaign named 'nope'" in result.stderr


# -- run --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_dry_run_estimates_and_lists_invalid_rows_and_sends_nothing(
    backend: str, journal: Path, customers: Path
) -> None:
    create(journal, customers)
    report = json_of(
        journal, "--backend", backend, "--gateway", "fake", "campaign", "run", "spring",
        "--dry-run", "--price", "2.5",
    )  # fmt: skip
    assert report == {
        "name": "spring",
        "to_send": 3,
        "parts": 3,
        "stop_listed": 0,
        "skipped": 1,
        "invalid": 1,
        "window_open": None,
        "price": "2.5",
        "cost": "7.5",
        "balance": "1000.0000",
        "enough_balance": True,
        "invalid_rows": [{"key": "c3", "reason": report["invalid_rows"][0]["reason"]}],
    }
    assert "line 4" in report["invalid_rows"][0]["reason"]
    status = json_of(journal, "campaign", "status", "spring")
    assert status["counts"]["pending"] == 3


def test_dry_run_counts_stop_listed_numbers_out(journal: Path, customers: Path) -> None:
    create(journal, customers)
    assert invoke("--journal", str(journal), "stoplist", "add", "+79000000001").exit_code == 0
    report = json_of(journal, "--gateway", "fake", "campaign", "run", "spring", "--dry-run")
    assert report["to_send"] == 2
    assert report["stop_listed"] == 1
    assert report["cost"] is None


def test_run_without_a_terminal_needs_confirm(journal: Path, customers: Path) -> None:
    create(journal, customers)
    result = invoke("--journal", str(journal), "--gateway", "fake", "campaign", "run", "spring")
    assert result.exit_code == 2
    assert "--confirm spring" in result.stderr
    wrong = invoke(
        "--journal", str(journal), "--gateway", "fake", "campaign", "run", "spring",
        "--confirm", "autumn",
    )  # fmt: skip
    assert wrong.exit_code == 2
    assert json_of(journal, "campaign", "status", "spring")["counts"]["pending"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_sends_every_row_and_status_shows_every_state(
    backend: str, journal: Path, customers: Path
) -> None:
    create(journal, customers)
    summary = json_of(
        journal, "--backend", backend, "--gateway", "fake", "campaign", "run", "spring",
        "--confirm", "spring", "--rate", "1000", "--max-concurrency", "2", "--packet-size", "2",
    )  # fmt: skip
    assert summary["state"] == "done"
    assert summary["accepted"] == 3
    assert summary["sent"] == 3
    status = json_of(journal, "--backend", backend, "campaign", "status", "spring")
    assert status["name"] == "spring"
    assert status["state"] == "done"
    assert set(status["counts"]) == EVERY_STATE
    assert status["counts"]["accepted"] == 3
    assert status["counts"]["skipped"] == 1
    assert status["rate"] == 0.05  # 3 rows settled in the last minute
    assert status["eta_seconds"] is None  # nothing left
    # Running a finished campaign again sends nothing and ends the same way.
    again = json_of(
        journal, "--gateway", "fake", "campaign", "run", "spring", "--confirm", "spring"
    )
    assert again["sent"] == 0


def test_run_with_rejections_exits_3(
    journal: Path, customers: Path, served: tuple[FakeMySms, str]
) -> None:
    fake, base_url = served
    fake.reject_number("79000000002")
    create(journal, customers)
    result = invoke(
        "--journal", str(journal), "--gateway", "fake", "--base-url", base_url,
        "--output", "json", "campaign", "run", "spring", "--confirm", "spring",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["rejected"] == 1
    assert "msg/s" not in result.stderr  # no progress drawn when stderr is not a terminal
    (row,) = json_of(journal, "campaign", "export", "spring", "--state", "rejected")
    assert row["key"] == "b2"
    assert row["phone"] == "7900*****02"


def test_unknown_outcomes_exit_4_and_are_requeued_only_with_accept_duplicates(
    journal: Path, customers: Path, served: tuple[FakeMySms, str]
) -> None:
    fake, base_url = served
    fake.faults.add(Fault.reset_after(), endpoint="send")
    create(journal, customers)
    common = ["--journal", str(journal), "--gateway", "fake", "--base-url", base_url]
    result = invoke(*common, "campaign", "run", "spring", "--confirm", "spring")
    assert result.exit_code == 4, result.output
    assert "never resent" in result.stderr
    unknown = json_of(journal, "campaign", "export", "spring", "--state", "unknown")
    assert sorted(row["key"] for row in unknown) == ["a1", "b2", "d4"]
    assert len(fake.ledger) == 3  # the gateway did send them: that is why they stay unknown

    refused = invoke(*common, "campaign", "requeue", "spring", "--state", "unknown")
    assert refused.exit_code == 2
    assert "--accept-duplicates" in refused.stderr
    assert json_of(journal, "campaign", "status", "spring")["counts"]["unknown"] == 3

    requeued = json_of(
        journal, "campaign", "requeue", "spring", "--state", "unknown", "--accept-duplicates"
    )
    assert requeued == {"name": "spring", "state": "unknown", "requeued": 3}
    assert json_of(journal, "campaign", "status", "spring")["counts"]["pending"] == 3


def test_a_paused_campaign_runs_nothing_and_exits_5_until_resumed(
    journal: Path, customers: Path
) -> None:
    create(journal, customers)
    common = ["--journal", str(journal), "--gateway", "fake"]
    assert invoke(*common, "campaign", "pause", "spring").exit_code == 0
    assert json_of(journal, "campaign", "status", "spring")["state"] == "paused"
    paused = invoke(*common, "campaign", "run", "spring", "--confirm", "spring")
    assert paused.exit_code == 5
    assert "campaign resume spring" in paused.stderr
    assert json_of(journal, "campaign", "resume", "spring") == {"name": "spring", "requeued": 0}
    assert invoke(*common, "campaign", "run", "spring", "--confirm", "spring").exit_code == 0


def test_a_campaign_without_a_sender_is_refused_before_sending(
    journal: Path, customers: Path, served: tuple[FakeMySms, str]
) -> None:
    fake, base_url = served
    create(journal, customers)
    env = {"AIOSMS_MYSMS_USERNAME": fake.username, "AIOSMS_MYSMS_PASSWORD": fake.password}
    result = invoke(
        "--journal", str(journal), "--gateway", "mysms", "--base-url", base_url,
        "campaign", "run", "spring", "--confirm", "spring", env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no sender name" in result.stderr
    assert fake.ledger == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_password_never_reaches_the_output_the_logs_or_the_journal(
    backend: str, journal: Path, customers: Path, served: tuple[FakeMySms, str], tmp_path: Path
) -> None:
    fake, base_url = served
    fake.password = "s3cret-Pa55word"
    create(journal, customers, "--sender", "aiosms")
    env = {"AIOSMS_MYSMS_USERNAME": fake.username, "AIOSMS_MYSMS_PASSWORD": fake.password}
    common = ["--backend", backend, "-vv", "--journal", str(journal), "--gateway", "mysms"]
    common += ["--base-url", base_url]
    outputs = [
        invoke(*common, "campaign", "run", "spring", "--dry-run", env=env),
        invoke(*common, "campaign", "run", "spring", "--confirm", "spring", env=env),
        invoke(*common, "campaign", "track", "spring", "--deadline", "0", env=env),
        invoke(*common, "campaign", "report", "spring", "--csv", str(tmp_path / "r.csv"), env=env),
    ]
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0], [r.output for r in outputs]
    assert len(fake.ledger) == 3
    for result in outputs:
        assert fake.password not in result.stdout + result.stderr
    for path in journal.parent.glob("campaigns.db*"):
        assert fake.password.encode() not in path.read_bytes()
    assert fake.password not in (tmp_path / "r.csv").read_text(encoding="utf-8")


# -- reading ----------------------------------------------------------------------------


def test_track_stores_delivery_states_and_report_counts_them(
    journal: Path, customers: Path, served: tuple[FakeMySms, str], tmp_path: Path
) -> None:
    fake, base_url = served
    create(journal, customers)
    common = ["--journal", str(journal), "--gateway", "fake", "--base-url", base_url]
    assert invoke(*common, "campaign", "run", "spring", "--confirm", "spring").exit_code == 0
    for entry in fake.ledger:
        fake.set_state(entry.id, 4)  # my-sms: delivered
    tracked = json_of(
        journal, "--gateway", "fake", "--base-url", base_url, "campaign", "track", "spring",
        "--deadline", "5",
    )  # fmt: skip
    assert tracked == {"name": "spring", "changes": 3, "delivered": 3}
    report = json_of(journal, "campaign", "report", "spring", "--csv", str(tmp_path / "r.csv"))
    assert report["accepted"] == 3
    assert report["delivery_delivered"] == 3
    assert set(EVERY_STATE) <= set(report)


def test_report_csv_has_every_row_with_masked_numbers_unless_asked(
    journal: Path, customers: Path, tmp_path: Path
) -> None:
    create(journal, customers)
    invoke("--journal", str(journal), "--gateway", "fake", "campaign", "run", "spring",
           "--confirm", "spring")  # fmt: skip
    masked, full = tmp_path / "masked.csv", tmp_path / "full.csv"
    assert invoke("--journal", str(journal), "campaign", "report", "spring",
                  "--csv", str(masked)).exit_code == 0  # fmt: skip
    assert invoke("--journal", str(journal), "--show-numbers", "campaign", "report", "spring",
                  "--csv", str(full)).exit_code == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(masked.read_text(encoding="utf-8"))))
    assert [(r["key"], r["state"]) for r in rows] == [
        ("a1", "accepted"), ("b2", "accepted"), ("d4", "accepted"), ("c3", "skipped"),
    ]  # fmt: skip
    assert rows[0]["phone"] == "7900*****01"
    assert all(r["message_id"] for r in rows[:3])
    shown = list(csv.DictReader(io.StringIO(full.read_text(encoding="utf-8"))))
    assert shown[0]["phone"] == "79000000001"


def test_export_writes_rows_in_the_chosen_format(journal: Path, customers: Path) -> None:
    create(journal, customers)
    result = invoke("--journal", str(journal), "--output", "csv", "campaign", "export", "spring",
                    "--state", "pending")  # fmt: skip
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["key"] for r in rows] == ["a1", "b2", "d4"]
    lines = invoke("--journal", str(journal), "--output", "jsonl", "campaign", "export", "spring")
    assert len(lines.stdout.splitlines()) == 4


def test_list_shows_every_campaign_with_its_counts(journal: Path, customers: Path) -> None:
    create(journal, customers)
    create(journal, customers, name="autumn")
    listed = json_of(journal, "campaign", "list")
    assert [(c["name"], c["state"], c["pending"]) for c in listed] == [
        ("spring", "active", 3),
        ("autumn", "active", 3),
    ]


def test_purge_deletes_only_campaigns_older_than_the_limit(journal: Path, customers: Path) -> None:
    create(journal, customers)
    assert json_of(journal, "campaign", "purge", "--older-than", "30") == []
    assert len(json_of(journal, "campaign", "list")) == 1
    time.sleep(0.01)
    assert json_of(journal, "campaign", "purge", "--older-than", "0") == [{"purged": "spring"}]
    assert json_of(journal, "campaign", "list") == []
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT COUNT(*) FROM aiosms_messages").fetchone() == (0,)
    db.close()


# -- stop list --------------------------------------------------------------------------


def test_stoplist_add_list_remove_and_import(journal: Path, tmp_path: Path) -> None:
    base = ["--journal", str(journal), "--output", "json", "stoplist"]
    added = invoke(*base, "add", "+7 900 000-00-01", "89000000002", "--reason", "asked")
    assert json.loads(added.stdout) == {"added": 2, "already_listed": 0}
    listed = json.loads(invoke(*base, "list").stdout)
    assert listed == [
        {"phone": "7900*****01", "reason": "asked"},
        {"phone": "7900*****02", "reason": "asked"},
    ]
    assert json.loads(invoke(*base, "remove", "79000000002").stdout) == {"removed": 1}
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("phone\n+79000000003\n79000000001\nnonsense\n", encoding="utf-8")
    imported = invoke(*base, "import", str(numbers))
    assert json.loads(imported.stdout) == {"added": 1, "already_listed": 1, "not_numbers": 2}
    assert "line 4" in imported.stderr
    full = invoke(
        "--journal", str(journal), "--output", "json", "--show-numbers", "stoplist", "list"
    )
    assert [e["phone"] for e in json.loads(full.stdout)] == ["79000000001", "79000000003"]


def test_stop_listed_numbers_are_skipped_at_import(journal: Path, customers: Path) -> None:
    invoke("--journal", str(journal), "stoplist", "add", "79000000004")
    create(journal, customers)
    skipped = json_of(journal, "campaign", "export", "spring", "--state", "skipped")
    assert {(r["key"], r["reason"]) for r in skipped} >= {("d4", "stop-listed")}


def test_stoplist_add_refuses_a_bad_number(journal: Path) -> None:
    result = invoke("--journal", str(journal), "stoplist", "add", "12")
    assert result.exit_code == 2
    assert "'12'" in result.stderr


# -- a real process ---------------------------------------------------------------------


def test_sigterm_drains_a_run_exits_5_and_leaves_nothing_claimed_or_unknown(
    journal: Path, tmp_path: Path, served: tuple[FakeMySms, str]
) -> None:
    fake, base_url = served
    fake.faults.add(Fault.latency(0.2), times=1000, endpoint="send")
    fake.balance = Decimal(10_000)
    rows = tmp_path / "rows.csv"
    rows.write_text("phone\n" + "".join(f"+7900000{i:04d}\n" for i in range(400)), encoding="utf-8")
    assert invoke("--journal", str(journal), "campaign", "create", "slow", "--csv", str(rows),
                  "--text", "hi").exit_code == 0  # fmt: skip
    process = subprocess.Popen(
        [
            sys.executable, "-m", "aiosms.cli", "--journal", str(journal), "--gateway", "fake",
            "--base-url", base_url, "campaign", "run", "slow", "--confirm", "slow",
            "--packet-size", "10", "--max-concurrency", "1",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while len(fake.ledger) < 10:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 5, stderr
    assert "SIGTERM" in stderr
    status = json_of(journal, "campaign", "status", "slow")
    counts = status["counts"]
    settled = counts["accepted"]
    assert status["rate"] == round(settled / 60, 3)
    assert status["eta_seconds"] == round((400 - settled) / (settled / 60))
    assert counts["claimed"] == 0
    assert counts["sending"] == 0
    # Drained: the packets on the wire settled, so nothing is left unknown.
    assert counts["unknown"] == 0
    assert counts["accepted"] == len(fake.ledger) > 0
    assert counts["pending"] > 0


def test_progress_is_drawn_on_a_terminal_stderr_and_stdout_stays_data(
    journal: Path, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("phone\n" + "".join(f"+7900000{i:04d}\n" for i in range(200)), encoding="utf-8")
    assert invoke("--journal", str(journal), "campaign", "create", "p", "--csv", str(rows),
                  "--text", "hi").exit_code == 0  # fmt: skip
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "aiosms.cli", "--journal", str(journal), "--gateway", "fake",
                "--output", "json", "campaign", "run", "p", "--confirm", "p",
                "--rate", "200", "--packet-size", "20",
            ],
            stdout=subprocess.PIPE, stderr=follower, text=True,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
        )  # fmt: skip
        os.close(follower)
        follower = -1
        drawn = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            drawn += chunk
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert process.returncode == 0
    assert json.loads(stdout)["accepted"] == 200
    assert b"msg/s" in drawn
    assert b"accepted" in drawn


def test_a_row_whose_text_comes_out_empty_is_skipped_with_its_line(
    journal: Path, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("phone,note\n79000000001,hello\n79000000002,\n", encoding="utf-8")
    result = invoke("--journal", str(journal), "campaign", "create", "e", "--csv", str(rows),
                    "--template", "{note}")  # fmt: skip
    assert result.exit_code == 0
    assert "added 1, already present 0, skipped 1" in result.stderr
    (row,) = json_of(journal, "campaign", "export", "e", "--state", "skipped")
    assert row["key"] == "3"
    assert row["reason"].startswith("invalid: line 3: text")


@pytest.mark.parametrize(("answer", "code", "accepted"), [("n", 1, 0), ("y", 0, 3)])
def test_on_a_terminal_run_asks_before_sending(
    answer: str, code: int, accepted: int, journal: Path, customers: Path
) -> None:
    create(journal, customers)
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "aiosms.cli", "--journal", str(journal), "--gateway", "fake",
                "campaign", "run", "spring",
            ],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.write(leader, f"{answer}\n".encode())
        _, stderr = process.communicate(timeout=30)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode == code, stderr
    assert b"Send the pending messages of campaign 'spring'?" in stderr
    counts = json_of(journal, "campaign", "status", "spring")["counts"]
    assert counts["accepted"] == accepted


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_campaign_runs_through_the_1000sms_fake_too(
    backend: str, journal: Path, customers: Path
) -> None:
    create(journal, customers)
    summary = json_of(
        journal, "--backend", backend, "--gateway", "fake", "--fake-flavour", "1000sms",
        "campaign", "run", "spring", "--confirm", "spring",
    )  # fmt: skip
    assert summary["state"] == "done"
    assert summary["accepted"] == 3


def test_dry_run_without_credentials_still_estimates(
    journal: Path, customers: Path, tmp_path: Path
) -> None:
    create(journal, customers)
    env = {"AIOSMS_PROFILE": str(tmp_path / "none.ini"), "AIOSMS_MYSMS_PASSWORD": ""}
    result = invoke(
        "--journal", str(journal), "--gateway", "mysms", "--base-url", "http://127.0.0.1:9/",
        "--output", "json", "campaign", "run", "spring", "--dry-run", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["balance"] is None
    assert "cannot read the balance: no username for mysms" in result.stderr


def test_a_run_from_a_worker_thread_works_without_signal_handling(
    journal: Path, customers: Path
) -> None:
    create(journal, customers)
    args = ["--journal", str(journal), "--gateway", "fake", "campaign", "run", "spring"]
    args += ["--confirm", "spring"]

    async def in_thread() -> Result:
        return await anyio.to_thread.run_sync(lambda: invoke(*args))

    assert anyio.run(in_thread).exit_code == 0
