"""The command on a PostgreSQL journal: `--journal postgresql://…` (and libpq's other
forms) for every campaign subcommand, `campaign init`, and a password in the argument
that is warned about and never shown.

A throwaway cluster on a Unix socket (tests/postgres_support.py) serves a fresh
database per test; sending goes to the fake gateway the command serves itself.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from postgres_support import Cluster, running_cluster

from aiosms.cli._app import cli

PASSWORD = "s3cret-Journal-pw"

CUSTOMERS = """\
id,name,phone
a1,Anna,+7 900 000-00-01
b2,Boris,8 900 000-00-02
c3,Vera,not a number
d4,Gleb,+7 900 000-00-04
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture
def conninfo(cluster: Cluster) -> str:
    """key=value conninfo of a fresh database."""
    return cluster.new_database()


def as_uri(conninfo: str, *, password: str | None = None) -> str:
    """The same database as a postgresql:// URI (the socket directory as ``host=``)."""
    params = dict(part.split("=", 1) for part in conninfo.split())
    secret = f":{password}" if password else ""
    return f"postgresql://{params['user']}{secret}@/{params['dbname']}?host={params['host']}"


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def journal_rows(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM aiosms_messages GROUP BY state"))


def test_init_creates_the_schema_in_postgresql_and_prints_its_version(conninfo: str) -> None:
    result = invoke("--journal", as_uri(conninfo), "--output", "json", "campaign", "init")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_version"] == 1
    with psycopg.connect(conninfo) as db:
        (version,) = db.execute(
            "SELECT value FROM aiosms_meta WHERE key = 'schema_version'"
        ).fetchone() or ("",)
        tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables")}
    assert version == "1"
    assert {"aiosms_campaigns", "aiosms_messages", "aiosms_workers"} <= tables
    again = invoke("--journal", conninfo, "--output", "json", "campaign", "init")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["schema_version"] == 1


def test_init_creates_a_sqlite_journal_file_too(tmp_path: Path) -> None:
    path = tmp_path / "new" / "campaigns.db"
    result = invoke("--journal", str(path), "--output", "json", "campaign", "init")
    assert result.exit_code == 0, result.output
    # SQLite journals are at schema version 5 (PostgreSQL ones at 1).
    assert json.loads(result.stdout) == {"journal": str(path), "schema_version": 5}
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'").fetchone()
    assert row == ("5",)


@pytest.mark.parametrize("form", ["uri", "postgres-uri", "conninfo"])
def test_every_campaign_subcommand_works_on_a_postgresql_journal(
    conninfo: str, customers: Path, form: str
) -> None:
    journal = {
        "uri": as_uri(conninfo),
        "postgres-uri": as_uri(conninfo).replace("postgresql://", "postgres://"),
        "conninfo": conninfo,
    }[form]
    base = ("--journal", journal, "--gateway", "fake", "--output", "json")
    created = invoke(
        *base, "campaign", "create", "spring", "--csv", str(customers), "--key-column", "id",
        "--template", "Hi {name}",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["added"] == 3
    ran = invoke(*base, "campaign", "run", "spring", "--confirm", "spring")
    assert ran.exit_code == 0, ran.output
    status = json.loads(invoke(*base, "campaign", "status", "spring").stdout)
    assert status["counts"]["accepted"] == 3
    assert status["counts"]["skipped"] == 1
    listed = json.loads(invoke(*base, "campaign", "list").stdout)
    assert [(c["name"], c["accepted"]) for c in listed] == [("spring", 3)]
    exported = json.loads(invoke(*base, "campaign", "export", "spring").stdout)
    assert sorted(r["key"] for r in exported) == ["a1", "b2", "c3", "d4"]
    assert invoke(*base, "campaign", "pause", "spring").exit_code == 0
    assert json.loads(invoke(*base, "campaign", "status", "spring").stdout)["state"] == "paused"
    assert invoke(*base, "campaign", "resume", "spring").exit_code == 0
    assert invoke(*base, "stoplist", "add", "+7 900 000-00-09").exit_code == 0
    stop = json.loads(invoke(*base, "--show-numbers", "stoplist", "list").stdout)
    assert [s["phone"] for s in stop] == ["79000000009"]
    report = json.loads(invoke(*base, "campaign", "report", "spring").stdout)
    assert report["accepted"] == 3
    tracked = invoke(*base, "campaign", "track", "spring", "--deadline", "0")
    assert tracked.exit_code == 0, tracked.output
    requeued = json.loads(
        invoke(*base, "campaign", "requeue", "spring", "--state", "skipped").stdout
    )
    assert requeued["requeued"] == 1
    assert journal_rows(conninfo) == {"accepted": 3, "pending": 1}
    purged = json.loads(invoke(*base, "campaign", "purge", "--older-than", "0").stdout)
    assert purged == [{"purged": "spring"}]
    assert journal_rows(conninfo) == {}


def test_a_service_name_from_a_service_file_reaches_the_database(
    conninfo: str, tmp_path: Path, customers: Path
) -> None:
    params = dict(part.split("=", 1) for part in conninfo.split())
    services = tmp_path / "pg_service.conf"
    services.write_text(
        "[sms]\n" + "".join(f"{k}={v}\n" for k, v in params.items()), encoding="utf-8"
    )
    env = {"PGSERVICEFILE": str(services)}
    result = invoke(
        "--journal", "service=sms", "--output", "json", "campaign", "create", "svc",
        "--csv", str(customers), "--text", "hi", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert journal_rows(conninfo) == {"pending": 3, "skipped": 1}


def test_a_password_in_the_journal_argument_is_warned_about_and_never_shown(
    conninfo: str, customers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = as_uri(conninfo, password=PASSWORD)
    base = ("-vv", "--journal", journal, "--gateway", "fake", "--output", "json")
    outputs = []
    with caplog.at_level(logging.DEBUG):
        for args in (
            ("campaign", "init"),
            ("campaign", "create", "p", "--csv", str(customers), "--text", "hi"),
            ("campaign", "run", "p", "--confirm", "p"),
            ("campaign", "status", "p"),
            ("campaign", "status", "missing"),
            ("campaign", "list"),
        ):
            result = invoke(*base, *args)
            assert result.exit_code in (0, 1), result.output
            outputs.append(result.stdout + result.stderr)
    assert "holds a password" in outputs[0]
    assert "password=***" in outputs[0]
    assert "no campaign named 'missing'" in outputs[4]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert PASSWORD not in "\n".join(outputs) + logs
    assert journal_rows(conninfo)["accepted"] == 3


def test_an_unreachable_database_exits_1_named_without_its_password(tmp_path: Path) -> None:
    # A socket directory where nothing listens: libpq fails at once.
    journal = f"host={tmp_path} port=1 user=sms password={PASSWORD} dbname=shop"
    result = invoke("--journal", journal, "campaign", "list")
    assert result.exit_code == 1
    assert "dbname=shop" in result.stderr
    assert "password=***" in result.stderr
    assert PASSWORD not in result.output


def test_a_malformed_connection_string_is_a_usage_error_that_does_not_repeat_it() -> None:
    result = invoke("--journal", f"host=db password {PASSWORD}", "campaign", "list")
    assert result.exit_code == 2
    assert "--journal" in result.stderr
    assert PASSWORD not in result.output
