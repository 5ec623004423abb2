"""What the PostgreSQL journal adds to the shared suite: many workers on one campaign
(heartbeats, the reaper, a pause seen by everyone, a shared rate), the schema it
keeps, connection strings that never show their password, and enqueueing inside
the application's own transaction. A real cluster (``pg_cluster``), fresh database
per test; the fake gateway's ledger is the truth about what was sent.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
import time
import warnings
from collections import Counter
from decimal import Decimal

import anyio
import postgres_support
import psycopg
import pytest

from aiosms import Message, ValidationError
from aiosms.campaigns import Campaign, NewRow, Outcome, PostgresJournal
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

LEASE = 60.0


def row(i: int) -> NewRow:
    return NewRow(str(i), f"7911{i:07d}", f"text {i}", "MyShop", None, None, 1, "pending", None)


async def campaign_with(journal: PostgresJournal, count: int) -> int:
    info = await journal.create_campaign("c", {})
    await journal.import_rows(info.id, [row(i) for i in range(1, count + 1)], dedupe=True)
    return info.id


def accepted(row_id: int) -> Outcome:
    return Outcome(row_id, "accepted", f"id-{row_id}", 1, None, None, None, None, "queued")


def messages(count: int, start: int = 0) -> list[Message]:
    return [
        Message(to=f"7911{i:07d}", text=f"Hi {i}", key=f"k{i}") for i in range(start, start + count)
    ]


@pytest.fixture
async def pg(pg_conninfo: str):  # type: ignore[no-untyped-def]
    async with PostgresJournal(pg_conninfo) as opened:
        yield opened


# -- many workers ------------------------------------------------------------------------


async def test_start_up_recovery_leaves_the_rows_of_a_live_worker_alone(
    pg: PostgresJournal,
) -> None:
    campaign = await campaign_with(pg, 4)
    await pg.heartbeat(campaign, "live", LEASE)
    claim = await pg.claim(campaign, "live", 4, LEASE, None)
    await pg.begin_send(campaign, "live", [(1, claim.epoch), (2, claim.epoch)], "att")
    assert await pg.recover(campaign) == (0, 0)
    counts = await pg.counts(campaign)
    assert (counts["sending"], counts["claimed"], counts["unknown"]) == (2, 2, 0)


async def test_a_worker_whose_heartbeat_went_stale_is_reaped_at_the_next_claim(
    pg: PostgresJournal,
) -> None:
    campaign = await campaign_with(pg, 6)
    await pg.heartbeat(campaign, "silent", 0.5)
    claim = await pg.claim(campaign, "silent", 4, 0.5, None)
    await pg.begin_send(campaign, "silent", [(1, claim.epoch), (2, claim.epoch)], "att")
    await pg.heartbeat(campaign, "other", LEASE)
    await anyio.sleep(0.8)
    taken = await pg.claim(campaign, "other", 10, LEASE, None)
    # Rows 3 and 4 were claimed but provably unsent: back in line and taken again.
    assert [r.id for r in taken.rows] == [3, 4, 5, 6]
    rows = {r.id: r for r in await pg.rows(campaign)}
    assert [(rows[i].state.value, rows[i].reason) for i in (1, 2)] == [
        ("unknown", "worker lost"),
        ("unknown", "worker lost"),
    ]
    assert await pg.live_workers(campaign) == 1


async def test_a_reaped_worker_that_wakes_up_sends_nothing_but_its_late_outcome_counts(
    pg: PostgresJournal,
) -> None:
    campaign = await campaign_with(pg, 3)
    await pg.heartbeat(campaign, "sleepy", 0.5)
    claim = await pg.claim(campaign, "sleepy", 3, 0.5, None)
    await pg.begin_send(campaign, "sleepy", [(1, claim.epoch)], "att")
    await anyio.sleep(0.8)
    await pg.heartbeat(campaign, "other", LEASE)
    taken = await pg.claim(campaign, "other", 10, LEASE, None)
    # Awake again: its claimed rows are someone else's now, so the fence refuses them.
    late = await pg.begin_send(campaign, "sleepy", [(2, claim.epoch), (3, claim.epoch)], "a2")
    # The request it had in flight did go out.
    settled = await pg.finish(campaign, "att", [accepted(1)])
    assert ([r.id for r in taken.rows], late, settled) == ([2, 3], set(), 1)
    (first,) = await pg.rows(campaign, state="accepted")
    assert (first.id, first.message_id) == (1, "id-1")


async def test_a_pause_stops_claims_and_fences_rows_already_claimed(pg: PostgresJournal) -> None:
    campaign = await campaign_with(pg, 4)
    await pg.heartbeat(campaign, "w", LEASE)
    claim = await pg.claim(campaign, "w", 2, LEASE, None)
    await pg.set_campaign_state(campaign, "paused", "no money")
    refused = await pg.begin_send(campaign, "w", [(r.id, claim.epoch) for r in claim.rows], "a")
    nothing = await pg.claim(campaign, "w", 2, LEASE, None)
    assert (refused, nothing.rows) == (set(), [])
    assert await pg.release(campaign, "w") == 2
    assert (await pg.counts(campaign))["pending"] == 4


async def test_a_worker_stalled_inside_a_transaction_does_not_stall_the_others(
    pg_conninfo: str,
) -> None:
    async with PostgresJournal(pg_conninfo) as stalled, PostgresJournal(pg_conninfo) as other:
        campaign = await campaign_with(stalled, 20)
        # A lease of 1 s: a session idle inside a transaction for half of it is ended.
        await stalled.heartbeat(campaign, "stalled", 1.0)
        attempts: list[int] = []

        def hold_the_campaign_row(db: psycopg.Cursor[object]) -> int:
            db.execute("SELECT epoch FROM aiosms_campaigns WHERE id = %s FOR UPDATE", (campaign,))
            attempts.append(len(attempts))
            if len(attempts) == 1:
                time.sleep(2.0)  # stopped with the lock held (SIGSTOP, a frozen VM)
            db.execute("SELECT 1")
            return len(attempts)

        taken: list[float] = []

        async def claim_beside() -> None:
            await anyio.sleep(0.3)
            began = anyio.current_time()
            claim = await other.claim(campaign, "other", 5, LEASE, None)
            taken.append(anyio.current_time() - began)
            assert len(claim.rows) == 5

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim_beside)
            result = await stalled._call(hold_the_campaign_row)
    # The other worker waited for the session to be ended, not for the stall to end.
    assert taken[0] < 1.5
    # The stalled transaction was rolled back by the server and ran again, whole.
    assert result == 2


async def test_live_workers_counts_only_fresh_heartbeats(pg: PostgresJournal) -> None:
    campaign = await campaign_with(pg, 1)
    await pg.heartbeat(campaign, "a", LEASE)
    await pg.heartbeat(campaign, "b", LEASE)
    await pg.heartbeat(campaign, "c", 0.1)
    await anyio.sleep(0.25)
    assert await pg.live_workers(campaign) == 2
    await pg.release(campaign, "b")
    assert await pg.live_workers(campaign) == 1


async def test_two_runs_share_the_campaigns_rate(pg_conninfo: str) -> None:
    fake = FakeMySms(balance=Decimal(10**9))
    async with PostgresJournal(pg_conninfo) as first, PostgresJournal(pg_conninfo) as second:
        campaign = await Campaign.create(first, "rated", messages(400), sender="Shop")
        again = await Campaign.open(second, "rated")
        started = anyio.current_time()
        async with fake.client() as sms, anyio.create_task_group() as tg:
            for each in (campaign, again):
                tg.start_soon(functools.partial(each.run, sms, rate=100, packet_size=10, lease=0.9))
        elapsed = anyio.current_time() - started
        counts = await campaign.counts()
    assert counts["accepted"] == 400
    assert Counter(e.phone for e in fake.ledger) == Counter(m.to for m in messages(400))
    # 400 messages at 100/s for the whole campaign take about 4 s (minus the first
    # buckets and the moments before the workers see each other); each worker at the
    # full rate would take 2 s.
    assert elapsed > 2.8


async def test_running_out_of_funds_on_one_worker_stops_every_worker(pg_conninfo: str) -> None:
    fake = FakeMySms(balance=Decimal(30), latency=0.02)  # twenty messages at 1.5
    async with PostgresJournal(pg_conninfo) as first, PostgresJournal(pg_conninfo) as second:
        campaign = await Campaign.create(first, "funds", messages(200), sender="Shop")
        again = await Campaign.open(second, "funds")
        summaries = []
        async with fake.client() as sms, anyio.create_task_group() as tg:
            for each in (campaign, again):

                async def run(c: Campaign = each) -> None:
                    summaries.append(await c.run(sms, packet_size=5, max_concurrency=1))

                tg.start_soon(run)
        counts = await campaign.counts()
        calls = len(fake.calls_to("send"))
    assert [s.state for s in summaries] == ["paused", "paused"]
    assert len(fake.ledger) == 20
    # After the refusing packet, each worker may have had one packet's request already
    # committed and on its way: no more.
    assert calls <= 20 / 5 + 1 + 2
    assert (counts["claimed"], counts["sending"], counts["unknown"]) == (0, 0, 0)
    assert counts["accepted"] + counts["rejected"] + counts["pending"] == 200


# -- schema ------------------------------------------------------------------------------


async def test_the_schema_is_versioned_and_its_tables_prefixed(pg_conninfo: str) -> None:
    async with PostgresJournal(pg_conninfo) as journal:
        await campaign_with(journal, 1)
        assert await journal.schema_version() == 1
    with psycopg.connect(pg_conninfo) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
    assert sorted(tables) == [
        "aiosms_campaigns",
        "aiosms_events",
        "aiosms_messages",
        "aiosms_meta",
        "aiosms_stoplist",
        "aiosms_workers",
    ]


async def test_the_journal_commits_synchronously_even_where_the_database_does_not(
    pg_conninfo: str,
) -> None:
    with psycopg.connect(pg_conninfo, autocommit=True) as admin:
        dbname = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{dbname}" SET synchronous_commit = off')
    async with PostgresJournal(pg_conninfo) as journal:
        await journal.counts(1)
        setting = await journal._call(lambda db: db.execute("SHOW synchronous_commit").fetchone())
    with psycopg.connect(pg_conninfo) as db:
        default = db.execute("SHOW synchronous_commit").fetchone()
    assert (default, setting) == (("off",), ("on",))


async def test_a_journal_of_a_newer_schema_is_refused(pg_conninfo: str) -> None:
    async with PostgresJournal(pg_conninfo) as journal:
        await campaign_with(journal, 1)
    with psycopg.connect(pg_conninfo) as db:
        db.execute("UPDATE aiosms_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="version 99"):
        async with PostgresJournal(pg_conninfo) as journal:
            await journal.counts(1)


async def test_many_first_users_at_once_create_the_schema_once(pg_conninfo: str) -> None:
    journals = [PostgresJournal(pg_conninfo) for _ in range(6)]
    found: list[int] = []
    try:
        async with anyio.create_task_group() as tg:
            for journal in journals:

                async def first_use(j: PostgresJournal = journal) -> None:
                    found.append(await j.schema_version())

                tg.start_soon(first_use)
    finally:
        for journal in journals:
            await journal.aclose()
    assert found == [1] * 6


# -- connection strings ------------------------------------------------------------------


def test_a_password_in_the_connection_string_is_warned_about_and_never_shown() -> None:
    conninfo = "postgresql://sms:s3cret-pw@127.0.0.1:1/shop"
    with pytest.warns(UserWarning, match="holds a password"):
        journal = PostgresJournal(conninfo)
    assert "s3cret-pw" not in repr(journal)
    assert "password=***" in repr(journal)


async def test_a_failed_connection_names_the_database_without_its_password(
    tmp_path: object,
) -> None:
    # A socket directory where no server listens: libpq fails at once.
    conninfo = f"host={tmp_path} port=1 user=sms password=s3cret-pw dbname=shop"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        journal = PostgresJournal(conninfo)
    with pytest.raises(ConnectionError) as raised:
        await journal.counts(1)
    await journal.aclose()
    assert "s3cret-pw" not in str(raised.value)
    assert "dbname=shop" in str(raised.value)


def test_a_malformed_connection_string_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValidationError) as raised:
        PostgresJournal("host=db password s3cret-pw")
    assert raised.value.field == "conninfo"
    assert "s3cret-pw" not in str(raised.value)


def test_a_connection_string_without_password_is_not_warned_about(pg_conninfo: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        journal = PostgresJournal(pg_conninfo)
    assert sorted(repr(journal)[17:-2].split()) == sorted(pg_conninfo.split())


# -- the application's own transaction ---------------------------------------------------


async def test_messages_enqueued_in_a_committed_transaction_are_sent_by_a_run(
    pg: PostgresJournal, pg_conninfo: str
) -> None:
    campaign = await Campaign.create(pg, "orders", sender="Shop")

    def place_orders() -> None:
        with psycopg.connect(pg_conninfo) as app:
            app.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
            for n in range(3):
                app.execute("INSERT INTO orders VALUES (%s)", (n,))
                PostgresJournal.enqueue(
                    app, "orders", [Message(to=f"791100000{n:02d}", text="Paid", key=f"o{n}")]
                )
            app.commit()

    await anyio.to_thread.run_sync(place_orders)
    fake = FakeMySms(balance=Decimal(100))
    async with fake.client() as sms:
        summary = await campaign.run(sms)
    assert (summary.state, summary.counts["accepted"]) == ("done", 3)
    assert sorted(e.phone for e in fake.ledger) == [f"791100000{n:02d}" for n in range(3)]


async def test_messages_enqueued_in_a_rolled_back_transaction_never_exist(
    pg: PostgresJournal, pg_conninfo: str
) -> None:
    campaign = await Campaign.create(pg, "orders", sender="Shop")

    def fail_an_order() -> None:
        with psycopg.connect(pg_conninfo) as app:
            app.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
            app.execute("INSERT INTO orders VALUES (1)")
            PostgresJournal.enqueue(app, "orders", messages(2))
            app.rollback()

    await anyio.to_thread.run_sync(fail_an_order)
    fake = FakeMySms(balance=Decimal(100))
    async with fake.client() as sms:
        summary = await campaign.run(sms)
    assert sum(summary.counts.values()) == 0
    assert fake.ledger == []


def test_enqueueing_needs_an_existing_campaign_and_keyed_messages(pg_conninfo: str) -> None:
    with psycopg.connect(pg_conninfo) as app:
        with pytest.raises(LookupError, match="no campaign named 'nope'"):
            PostgresJournal.enqueue(app, "nope", messages(1))
        app.rollback()
        with pytest.raises(ValidationError) as raised:
            PostgresJournal.enqueue(app, "nope", [Message(to="79110000001", text="x")])
    assert raised.value.field == "key"


def test_enqueueing_the_same_key_twice_adds_it_once(pg_conninfo: str) -> None:
    anyio.run(_create_campaign, pg_conninfo, "orders")
    with psycopg.connect(pg_conninfo) as app:
        first = PostgresJournal.enqueue(app, "orders", messages(2))
        second = PostgresJournal.enqueue(app, "orders", messages(3))
        app.commit()
        (count,) = app.execute("SELECT COUNT(*) FROM aiosms_messages").fetchone() or (0,)
    assert (first.added, second.added, count) == (2, 1, 3)


async def _create_campaign(conninfo: str, name: str) -> None:
    async with PostgresJournal(conninfo) as journal:
        await Campaign.create(journal, name)


def test_the_journal_logs_no_connection_string(
    pg_conninfo: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def use() -> None:
        async with PostgresJournal(pg_conninfo) as journal:
            campaign = await campaign_with(journal, 2)
            await journal.heartbeat(campaign, "w", 0.5)
            claim = await journal.claim(campaign, "w", 2, 0.5, None)
            await journal.begin_send(campaign, "w", [(1, claim.epoch)], "a")
            await anyio.sleep(0.8)
            await journal.recover(campaign)

    with caplog.at_level(logging.DEBUG, logger="aiosms"):
        anyio.run(use)
    assert "stopped beating: marked unknown" in caplog.text
    assert pg_conninfo not in caplog.text
    assert json.dumps(pg_conninfo) not in caplog.text


def test_the_test_cluster_fails_loudly_without_the_server_binaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_support, "find_bin", lambda name: None)
    with (
        pytest.raises(RuntimeError, match="apt-get install postgresql"),
        postgres_support.running_cluster(),
    ):
        pass


def test_without_psycopg_campaigns_work_and_the_postgres_journal_says_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # not installed: importing it fails\n"
        "from aiosms.campaigns import Campaign, SqliteJournal\n"
        "try:\n"
        "    from aiosms.campaigns import PostgresJournal\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "PostgresJournal needs psycopg: pip install 'aiosms[postgres]'\n"
