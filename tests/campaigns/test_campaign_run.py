"""Campaign.run end to end: a real SQLite journal in tmp_path and a real PostgreSQL
database, the fake gateways of aiosms.testing, asyncio and trio. The fake's ledger is
the truth about what was sent.

Expected values come from the contract (DESIGN.md, "Campaigns") and hand arithmetic:
the fake my-sms charges 1.5 per part, so a balance of 15 pays for ten messages.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

from aiosms import Message
from aiosms._validation import MOSCOW
from aiosms.campaigns import Campaign, Journal, PostgresJournal, SqliteJournal
from aiosms.testing import FakeMySms, FakeThousandSms, FakeTransport, Fault

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
PLENTY = Decimal(10**9)


def phone(i: int) -> str:
    return f"7911{i:07d}"


def messages(count: int, start: int = 0) -> list[Message]:
    return [
        Message(to=phone(i), text=f"Sale {i}", key=f"row-{i}") for i in range(start, start + count)
    ]


@pytest.fixture(params=["sqlite", "postgres"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh journal of each backend: the runner's behaviour is the same on both."""
    if request.param == "sqlite":
        opened: Journal = SqliteJournal(tmp_path / "campaigns.db")
    else:
        opened = PostgresJournal(request.getfixturevalue("pg_conninfo"))
    async with opened:
        yield opened


@pytest.fixture
async def sqlite_journal(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with SqliteJournal(tmp_path / "campaigns.db") as opened:
        yield opened


def sent_phones(fake: FakeMySms | FakeThousandSms) -> Counter[str]:
    return Counter(entry.phone for entry in fake.ledger)


# -- the happy path ------------------------------------------------------------------------


async def test_a_campaign_sends_every_row_once_and_a_second_run_sends_nothing(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "spring", messages(250), sender=SENDER)
    async with fake.client() as sms:
        summary = await campaign.run(sms, packet_size=50)
        again = await campaign.run(sms, packet_size=50)
    assert (summary.state, summary.sent, summary.counts["accepted"]) == ("done", 250, 250)
    assert summary.parts == 250
    assert (again.state, again.sent) == ("done", 0)
    assert sent_phones(fake) == Counter(phone(i) for i in range(250))


async def test_creating_a_campaign_twice_with_the_same_rows_adds_nothing(
    journal: SqliteJournal,
) -> None:
    first = await Campaign.create(journal, "spring", messages(30))
    second = await Campaign.create(journal, "spring", messages(40))
    assert second.id == first.id
    assert (await second.counts())["pending"] == 40


async def test_every_row_is_marked_sending_before_its_request_reaches_the_gateway(
    sqlite_journal: SqliteJournal, tmp_path: Path
) -> None:
    journal = sqlite_journal
    fake = FakeMySms(balance=PLENTY)
    seen: list[set[str]] = []

    class Spy(FakeTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            body = json.loads(await request.aread())
            numbers = {item["destination"] for item in body["data"]}
            # Another connection sees only what is committed: the intent is durable.
            async with SqliteJournal(tmp_path / "campaigns.db") as reader:
                rows = await reader.rows(campaign.id)
            seen.append({row.state.value for row in rows if row.phone in numbers})
            return await super().handle_async_request(request)

    campaign = await Campaign.create(journal, "intent", messages(60), sender=SENDER)
    async with fake.client(http_transport=Spy(fake)) as sms:
        summary = await campaign.run(sms, packet_size=20)
    assert summary.state == "done"
    assert seen == [{"sending"}] * 3


async def test_a_campaign_can_be_opened_by_name_and_an_unknown_name_is_refused(
    journal: SqliteJournal,
) -> None:
    created = await Campaign.create(journal, "spring", messages(3), max_parts=2)
    opened = await Campaign.open(journal, "spring")
    assert opened.id == created.id
    assert opened.settings["max_parts"] == 2
    with pytest.raises(LookupError):
        await Campaign.open(journal, "autumn")


async def test_rows_that_failed_validation_are_recorded_as_skipped_with_their_reason(
    journal: SqliteJournal,
) -> None:
    campaign = await Campaign.create(
        journal, "csv", messages(2), invalid=[(7, "12", "to: must be 10-15 digits")]
    )
    skipped = [row async for row in campaign.export("skipped")]
    assert [(r.key, r.phone, r.reason) for r in skipped] == [
        ("7", "12", "invalid: to: must be 10-15 digits")
    ]


async def test_a_text_longer_than_max_parts_is_skipped_at_import(journal: SqliteJournal) -> None:
    long = Message(to=phone(1), text="x" * 161, key="long")  # 161 GSM-7 characters: 2 parts
    short = Message(to=phone(2), text="x" * 160, key="short")
    campaign = await Campaign.create(journal, "parts", [long, short], max_parts=1)
    rows = {row.key: row async for row in campaign.results()}
    assert (rows["long"].state, rows["long"].parts) == ("skipped", 2)
    assert rows["long"].reason == "too many parts (2 > 1)"
    assert (rows["short"].state, rows["short"].parts) == ("pending", 1)


# -- recovery and fencing ------------------------------------------------------------------


async def test_rows_left_sending_by_a_dead_worker_become_unknown_and_are_never_sent(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "crash", messages(20), sender=SENDER)
    # A worker that claimed ten rows, began sending five, and died.
    claim = await journal.claim(campaign.id, "dead", 10, 60.0, None)
    dead = [(row.id, claim.epoch) for row in claim.rows[:5]]
    assert len(await journal.begin_send(campaign.id, "dead", dead, "lost-attempt")) == 5
    async with fake.client() as sms:
        summary = await campaign.run(sms, packet_size=10)
    assert (summary.counts["unknown"], summary.counts["accepted"]) == (5, 15)
    assert sent_phones(fake) == Counter(phone(i) for i in range(5, 20))
    unknown = [row async for row in campaign.export("unknown")]
    assert {row.reason for row in unknown} == {"worker lost"}


class Meddling(SqliteJournal):
    """A journal whose first packet's claim is changed by someone else just before the
    fenced update: another worker claiming its rows (owner, epoch) or its lease running
    out. A claim is taken or lost whole: ``meddled`` holds every row of it."""

    def __init__(self, path: Path, change: str) -> None:
        super().__init__(path)
        self.change = change
        self.meddled: list[int] = []

    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        if not self.meddled:
            first = min(row_id for row_id, _ in rows)
            with sqlite3.connect(self.path) as other:
                lowest, highest = other.execute(
                    "SELECT first_id, last_id FROM aiosms_claims WHERE campaign = ? "
                    "AND ? BETWEEN first_id AND last_id",
                    (campaign, first),
                ).fetchone()
                self.meddled = [
                    row_id
                    for (row_id,) in other.execute(
                        "SELECT id FROM aiosms_messages WHERE campaign = ? AND state = 'pending' "
                        "AND id BETWEEN ? AND ?",
                        (campaign, lowest, highest),
                    )
                ]
                other.execute(
                    f"UPDATE aiosms_claims SET {self.change} WHERE campaign = ? AND first_id = ?",
                    (campaign, lowest),
                )
        return await super().begin_send(campaign, owner, rows, attempt)


async def test_a_packet_whose_rows_another_worker_claimed_is_not_sent(tmp_path: Path) -> None:
    fake = FakeMySms(balance=PLENTY)
    async with Meddling(
        tmp_path / "j.db", "owner = 'thief', epoch = epoch + 1000, lease_until = 1e12"
    ) as journal:
        campaign = await Campaign.create(journal, "fenced", messages(80), sender=SENDER)
        async with fake.client() as sms:
            summary = await campaign.run(sms, packet_size=10, max_concurrency=1, claim_packets=4)
        stolen = {row.phone for row in await journal.rows(campaign.id) if row.id in journal.meddled}
    # The first claim (four packets of ten) is the thief's now: none of it goes out.
    assert len(stolen) == 40
    assert not stolen & set(sent_phones(fake))
    assert len(fake.ledger) == 40
    assert (summary.counts["claimed"], summary.state) == (40, "incomplete")


async def test_a_packet_whose_lease_expired_is_not_sent_and_its_rows_are_claimed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeMySms(balance=PLENTY)
    async with Meddling(tmp_path / "j.db", "lease_until = 0") as journal:
        campaign = await Campaign.create(journal, "lease", messages(40), sender=SENDER)
        async with fake.client() as sms:
            with caplog.at_level(logging.WARNING, logger="aiosms.campaigns"):
                summary = await campaign.run(sms, packet_size=10, max_concurrency=1)
            if summary.state != "done":
                # The run had claimed everything before the lease ran out: the expired
                # claim's rows went back to pending when it ended.
                assert summary.counts["pending"] == len(journal.meddled)
                summary = await campaign.run(sms, packet_size=10)
    assert "10 of 10 row(s) of a packet are no longer this worker's" in caplog.text
    # The fenced packets made no request; their rows went later under a new claim, once.
    assert [call.messages for call in fake.calls_to("send")] == [10, 10, 10, 10]
    assert summary.state == "done"
    assert sent_phones(fake) == Counter(phone(i) for i in range(40))


async def test_a_lost_reply_ends_unknown_and_a_rerun_never_resends_it(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    fake.faults.add(Fault.reset_after(), endpoint="send")
    campaign = await Campaign.create(journal, "lost", messages(30), sender=SENDER)
    async with fake.client() as sms:
        first = await campaign.run(sms, packet_size=10, max_concurrency=1)
        second = await campaign.run(sms, packet_size=10)
    assert (first.counts["unknown"], first.counts["accepted"]) == (10, 20)
    assert (second.sent, second.counts["unknown"]) == (0, 10)
    # The gateway did take the lost packet: each number exactly once.
    assert sent_phones(fake) == Counter(phone(i) for i in range(30))
    unknown = [row async for row in campaign.export("unknown")]
    assert {row.error_class for row in unknown} == {"DeliveryUnknownError"}


async def test_requeueing_unknown_rows_needs_accept_duplicates_and_is_logged(
    journal: SqliteJournal, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeMySms(balance=PLENTY)
    fake.faults.add(Fault.reset_after(), endpoint="send")
    campaign = await Campaign.create(journal, "requeue", messages(10), sender=SENDER)
    async with fake.client() as sms:
        await campaign.run(sms, packet_size=10)
        with pytest.raises(ValueError, match="accept_duplicates"):
            await campaign.requeue("unknown")
        with caplog.at_level(logging.WARNING, logger="aiosms.campaigns"):
            assert await campaign.requeue("unknown", accept_duplicates=True) == 10
        summary = await campaign.run(sms, packet_size=10)
    assert "requeued" in caplog.text
    assert summary.counts["accepted"] == 10
    # Accepted duplicates, as asked: every number twice.
    assert set(sent_phones(fake).values()) == {2}


# -- guards ------------------------------------------------------------------------------


async def test_stop_listed_numbers_are_skipped_at_import_and_at_claim_and_blacklist_codes_add(
    journal: SqliteJournal,
) -> None:
    fake = FakeThousandSms(balance=PLENTY, blacklist={phone(3)})
    await journal.stoplist_add([(phone(1), "asked to stop")])
    campaign = await Campaign.create(journal, "guards", messages(6), sender="sms-tester")
    await journal.stoplist_add([(phone(2), "complained after import")])
    async with fake.client() as sms:
        summary = await campaign.run(sms)
    rows = {row.phone: row async for row in campaign.results()}
    assert (rows[phone(1)].state, rows[phone(2)].state) == ("skipped", "skipped")
    assert (rows[phone(3)].state, rows[phone(3)].error_class) == ("rejected", "BlacklistedError")
    assert summary.counts == {
        "pending": 0,
        "claimed": 0,
        "sending": 0,
        "accepted": 3,
        "rejected": 1,
        "unknown": 0,
        "skipped": 2,
    }
    assert sent_phones(fake) == Counter([phone(0), phone(4), phone(5)])
    assert phone(3) in dict(await journal.stoplist())
    later = await Campaign.create(journal, "later", messages(4), sender="sms-tester")
    assert (await later.counts())["skipped"] == 3


def hours_from_now(start: float, end: float) -> tuple[time, time]:
    now = datetime.now(MOSCOW)
    return (
        (now + timedelta(hours=start)).time().replace(microsecond=0),
        (now + timedelta(hours=end)).time().replace(microsecond=0),
    )


async def test_nothing_is_claimed_outside_the_send_window(journal: SqliteJournal) -> None:
    fake = FakeMySms(balance=PLENTY)
    closed = await Campaign.create(
        journal, "closed", messages(5), sender=SENDER, window=hours_from_now(1, 2)
    )
    opened = await Campaign.create(
        journal, "open", messages(5, start=5), sender=SENDER, window=hours_from_now(-1, 1)
    )
    async with fake.client() as sms:
        waiting = await closed.run(sms)
        done = await opened.run(sms)
    assert waiting.state == "window"
    assert "opens at" in (waiting.reason or "")
    assert waiting.counts["pending"] == 5
    assert done.state == "done"
    assert sent_phones(fake) == Counter(phone(i) for i in range(5, 10))


async def test_the_campaign_pauses_before_overrunning_its_budget_and_resumes_with_a_new_one(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "budget", messages(10), sender=SENDER, budget=4)
    async with fake.client() as sms:
        paused = await campaign.run(sms, packet_size=3)
        assert paused.paused
        assert "budget" in (paused.reason or "")
        assert (len(fake.ledger), paused.counts["pending"]) == (4, 6)
        await campaign.resume(budget=None)
        done = await campaign.run(sms, packet_size=3)
    assert done.state == "done"
    assert sent_phones(fake) == Counter(phone(i) for i in range(10))


# -- account-level refusals ----------------------------------------------------------------


async def test_an_authentication_failure_pauses_and_resume_completes_after_the_fix(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "auth", messages(50), sender=SENDER)
    async with fake.client(password="wrong") as sms:
        paused = await campaign.run(sms, packet_size=10, max_concurrency=2)
        again = await campaign.run(sms, packet_size=10)
    assert paused.paused
    assert "AuthenticationError" in (paused.reason or "")
    assert len(fake.calls_to("send")) <= 2
    assert fake.ledger == []
    assert (again.state, again.sent) == ("paused", 0)
    assert await campaign.resume() == paused.counts["rejected"]
    async with fake.client() as sms:
        done = await campaign.run(sms, packet_size=10)
    assert done.state == "done"
    assert sent_phones(fake) == Counter(phone(i) for i in range(50))


async def test_running_out_of_funds_pauses_with_nothing_sent_after_it(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=Decimal(15))  # ten messages at 1.5
    campaign = await Campaign.create(journal, "funds", messages(30), sender=SENDER)
    async with fake.client() as sms:
        paused = await campaign.run(sms, packet_size=5, max_concurrency=1)
        assert paused.paused
        assert "InsufficientFundsError" in (paused.reason or "")
        assert len(fake.ledger) == 10
        assert len(fake.calls_to("send")) == 3
        assert (paused.counts["pending"], paused.counts["rejected"]) == (15, 5)
        fake.balance = PLENTY
        await campaign.resume()
        done = await campaign.run(sms, packet_size=5)
    assert done.state == "done"
    assert done.counts["accepted"] == 30
    assert sent_phones(fake) == Counter(phone(i) for i in range(30))


async def test_a_blocked_account_pauses_and_resume_completes_once_unblocked(
    journal: SqliteJournal,
) -> None:
    fake = FakeThousandSms(balance=PLENTY, blocked=True)
    campaign = await Campaign.create(journal, "blocked", messages(20), sender="sms-tester")
    async with fake.client(max_concurrency=1) as sms:
        paused = await campaign.run(sms)
        assert paused.paused
        assert "AccountError" in (paused.reason or "")
        assert fake.ledger == []
        assert len(fake.calls_to("push_msg")) <= 1
        fake.blocked = False
        await campaign.resume()
        done = await campaign.run(sms)
    assert done.state == "done"
    assert done.cost == Decimal("2.5") * 20
    assert sent_phones(fake) == Counter(phone(i) for i in range(20))


async def test_a_campaign_paused_by_the_user_sends_nothing_until_resumed(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "user", messages(5), sender=SENDER)
    await campaign.pause("checking the text")
    async with fake.client() as sms:
        paused = await campaign.run(sms)
        await campaign.resume()
        done = await campaign.run(sms)
    assert (paused.state, paused.reason, paused.sent) == ("paused", "checking the text", 0)
    assert (done.state, len(fake.ledger)) == ("done", 5)


# -- tracking and cost -------------------------------------------------------------------


async def test_track_polls_accepted_messages_to_final_states_and_stores_them(
    journal: SqliteJournal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "track", messages(25), sender=SENDER)
    async with fake.client() as sms:
        await campaign.run(sms, packet_size=10)
        reports = [r async for r in campaign.track(sms, interval=0.01, deadline=10, page_size=10)]
    rows = [row async for row in campaign.export("accepted")]
    assert {row.delivery for row in rows} == {"delivered"}
    assert Counter(r.state.value for r in reports) == {"sent": 25, "delivered": 25}


# -- journal calls -----------------------------------------------------------------------


class Counting(SqliteJournal):
    """The real journal, counting its calls."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()

    async def claim(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["claim"] += 1
        return await super().claim(*args, **kwargs)

    async def begin_send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["begin_send"] += 1
        return await super().begin_send(*args, **kwargs)

    async def finish(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["finish"] += 1
        return await super().finish(*args, **kwargs)

    async def import_rows(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["import_rows"] += 1
        return await super().import_rows(*args, **kwargs)


async def test_the_journal_is_called_per_claim_and_per_packet_never_per_message(
    tmp_path: Path,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    async with Counting(tmp_path / "j.db") as journal:
        campaign = await Campaign.create(journal, "calls", messages(1000), sender=SENDER)
        async with fake.client() as sms:
            summary = await campaign.run(sms, packet_size=100, claim_packets=4)
        calls = journal.calls
    assert summary.counts["accepted"] == 1000
    assert calls["import_rows"] == 1
    assert (calls["begin_send"], calls["finish"]) == (10, 10)
    # 400 + 400 + 200 rows, then one claim that finds nothing.
    assert calls["claim"] == 4


async def test_a_window_in_a_named_time_zone_is_read_in_that_zone(journal: SqliteJournal) -> None:
    fake = FakeMySms(balance=PLENTY)
    # Open now in Vladivostok (UTC+10) for the next hour; the same hours read as Moscow
    # time would be seven hours off, and closed.
    local = datetime.now(ZoneInfo("Asia/Vladivostok"))
    window = (local.time().replace(microsecond=0), (local + timedelta(hours=1)).time())
    campaign = await Campaign.create(
        journal, "vladivostok", messages(3), sender=SENDER, window=window, tz="Asia/Vladivostok"
    )
    moscow = await Campaign.create(
        journal, "moscow", messages(3, start=3), sender=SENDER, window=window
    )
    async with fake.client() as sms:
        done = await campaign.run(sms)
        closed = await moscow.run(sms)
    assert (done.state, closed.state) == ("done", "window")
    assert sent_phones(fake) == Counter(phone(i) for i in range(3))


async def test_run_can_wait_for_the_window_to_open(journal: SqliteJournal) -> None:
    fake = FakeMySms(balance=PLENTY)
    now = datetime.now(MOSCOW)
    window = ((now + timedelta(seconds=2)).time(), (now + timedelta(hours=1)).time())
    campaign = await Campaign.create(journal, "soon", messages(3), sender=SENDER, window=window)
    async with fake.client() as sms:
        with anyio.fail_after(20):
            summary = await campaign.run(sms, wait_for_window=True)
    assert summary.state == "done"
    assert len(fake.ledger) == 3


async def test_an_unknown_time_zone_is_refused_before_anything_is_stored(
    journal: SqliteJournal,
) -> None:
    with pytest.raises(ValueError, match="tz"):
        await Campaign.create(journal, "nowhere", messages(1), tz="Mars/Olympus_Mons")
    assert await journal.get_campaign("nowhere") is None


async def test_results_list_every_row_once_in_import_order_across_pages(
    journal: SqliteJournal,
) -> None:
    campaign = await Campaign.create(journal, "report", messages(2500))
    keys = [row.key async for row in campaign.results()]
    assert keys == [f"row-{i}" for i in range(2500)]
    summary = await campaign.summary()
    assert (summary.state, summary.counts["pending"], summary.sent) == ("incomplete", 2500, 0)
