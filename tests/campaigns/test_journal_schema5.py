"""The SQLite journal at schema 5: a packet settled whole keeps its accepted outcomes in
its own record, and every reader still sees each of them as the row's outcome.

The file is read with plain SQL beside the journal, to see where an outcome is kept;
what the journal shows is checked against figures written out here. Real SQLite files in
tmp_path, the in-process fake my-sms, asyncio and trio.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, Outcome, SqliteJournal
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
LEASE = 60.0


def numbered(count: int) -> list[Message]:
    return [Message(to=f"7911{i:07d}", text=f"Sale {i}", key=f"row-{i}") for i in range(count)]


def accepted(row_id: int, parts: int | None, cost: str | None) -> Outcome:
    return Outcome(row_id, "accepted", f"mid-{row_id}", parts, cost, None, None, None, "queued")


def rejected(row_id: int) -> Outcome:
    return Outcome(row_id, "rejected", None, 1, None, "InvalidPhoneError", 3, "bad number",
                   None, None)  # fmt: skip


def where_kept(path: Path) -> tuple[int, int, int]:
    """Outcome rows, packet records keeping outcomes, and the outcomes they keep."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM aiosms_outcomes").fetchone()
        records = [a for (a,) in db.execute(
            "SELECT accepted FROM aiosms_attempts WHERE accepted IS NOT NULL")]  # fmt: skip
    return rows, len(records), sum(len(json.loads(a)) for a in records)


async def on_the_wire(
    journal: SqliteJournal, count: int, attempt: str
) -> tuple[Campaign, list[int]]:
    """A campaign of ``count`` rows, all claimed by "w" and sent as one packet."""
    campaign = await Campaign.create(journal, "c", numbered(count), sender=SENDER)
    claim = await journal.claim(campaign.id, "w", count, LEASE, None)
    ids = [row.id for row in claim.rows]
    await journal.begin_send(campaign.id, "w", [(i, claim.epoch) for i in ids], attempt)
    return campaign, ids


async def settle_two_packets(journal: SqliteJournal, campaign: int) -> list[int]:
    """Claim 6 rows; packet p1 (rows 0-2) settles whole, all accepted with parts and
    costs; packet p2 (rows 3-5) settles whole with one rejection. Returns the row ids."""
    claim = await journal.claim(campaign, "w", 6, LEASE, None)
    ids = [row.id for row in claim.rows]
    await journal.begin_send(campaign, "w", [(i, claim.epoch) for i in ids[:3]], "p1")
    await journal.begin_send(campaign, "w", [(i, claim.epoch) for i in ids[3:]], "p2")
    first = [accepted(ids[0], 2, "3.10"), accepted(ids[1], 1, "1.55"), accepted(ids[2], 1, None)]
    assert await journal.finish(campaign, "p1", first) == 3
    second = [accepted(ids[3], 3, "4.65"), rejected(ids[4]), accepted(ids[5], 1, "1.55")]
    assert await journal.finish(campaign, "p2", second) == 3
    return ids


async def test_a_packet_settled_whole_keeps_its_accepted_outcomes_and_readers_see_them_as_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", numbered(8), sender=SENDER)
        started = time.time()
        ids = await settle_two_packets(journal, campaign.id)
        kept_while_sending = where_kept(path)
        # Counts, totals and the recent rate read the records as they are.
        counts = await journal.counts(campaign.id)
        totals = await journal.totals(campaign.id)
        recent = await journal.settled_since(campaign.id, started)
        later = await journal.settled_since(campaign.id, time.time() + 60)
        kept_after_totals = where_kept(path)
        # A page of rows sees every outcome as a row: the records become rows.
        page = await journal.rows(campaign.id)
        kept_after_rows = where_kept(path)
        by_state = {
            state: [r.key for r in await journal.rows(campaign.id, state=state)]
            for state in ("accepted", "rejected", "pending")
        }
        tracking = await journal.tracking_page(campaign.id, after=0, limit=100)
        totals_after = await journal.totals(campaign.id)

    # The rejection is a row at once; the five accepted outcomes wait in two records.
    assert kept_while_sending == (1, 2, 5)
    assert kept_after_totals == kept_while_sending
    assert counts == {"pending": 2, "claimed": 0, "sending": 0, "accepted": 5, "rejected": 1,
                      "unknown": 0, "skipped": 0}  # fmt: skip
    # 2+1+1+3+1 parts; 3.10+1.55+4.65+1.55 roubles.
    assert (totals[0], Decimal(totals[1] or "NaN")) == (8, Decimal("10.85"))
    assert totals_after == totals
    assert (recent, later) == (6, 0)
    assert kept_after_rows == (6, 0, 0)
    shown = {r.key: r for r in page}
    assert [shown[f"row-{i}"].state.value for i in range(8)] == [
        "accepted", "accepted", "accepted", "accepted", "rejected", "accepted", "pending",
        "pending",
    ]  # fmt: skip
    assert [(shown[f"row-{i}"].message_id, shown[f"row-{i}"].attempt) for i in (0, 3)] == [
        (f"mid-{ids[0]}", "p1"),
        (f"mid-{ids[3]}", "p2"),
    ]
    assert (shown["row-0"].parts, shown["row-0"].cost, shown["row-2"].cost) == (
        2,
        Decimal("3.10"),
        None,
    )
    assert shown["row-0"].settled_at is not None
    assert by_state == {
        "accepted": ["row-0", "row-1", "row-2", "row-3", "row-5"],
        "rejected": ["row-4"],
        "pending": ["row-6", "row-7"],
    }
    assert [(row_id, mid) for row_id, mid, _ in tracking] == [
        (i, f"mid-{i}") for i in (ids[0], ids[1], ids[2], ids[3], ids[5])
    ]


async def test_outcomes_without_parts_from_the_gateway_are_rows_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign, ids = await on_the_wire(journal, 3, "p1")
        outcomes = [accepted(ids[0], 2, None), accepted(ids[1], None, None),
                    accepted(ids[2], 1, None)]  # fmt: skip
        await journal.finish(campaign.id, "p1", outcomes)
        kept = where_kept(path)
        totals = await journal.totals(campaign.id)
    assert kept == (3, 0, 0)
    # Row 1's parts are its message's own (one part).
    assert totals == (4, None)


async def test_rows_kept_in_packet_records_are_requeued_and_go_out_once_more(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    fake = FakeMySms(balance=Decimal(10**6))
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", numbered(10), sender=SENDER)
        async with fake.client() as sms:
            first = await campaign.run(sms, packet_size=5)
            kept = where_kept(path)
            requeued = await campaign.requeue("accepted", accept_duplicates=True)
            second = await campaign.run(sms, packet_size=5)
        counts = await campaign.counts()
    assert first.counts["accepted"] == 10
    assert kept == (0, 2, 10)
    assert requeued == 10
    assert second.counts["accepted"] == 10
    assert counts["accepted"] == 10
    assert Counter(Counter(e.text for e in fake.ledger).values()) == {2: 10}


async def test_a_lost_worker_leaves_packed_outcomes_as_they_are_and_its_live_packet_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", numbered(9), sender=SENDER)
        ids = await settle_two_packets(journal, campaign.id)
        claim = await journal.claim(campaign.id, "w", 3, LEASE, None)
        live = [row.id for row in claim.rows]
        await journal.begin_send(campaign.id, "w", [(i, claim.epoch) for i in live], "p3")
        # The worker dies here; the next run's start-up recovers.
        recovered = await journal.recover(campaign.id)
        counts = await journal.counts(campaign.id)
        states = {r.id: r.state.value for r in await journal.rows(campaign.id)}
    assert recovered == (3, 0)
    assert counts == {"pending": 0, "claimed": 0, "sending": 0, "accepted": 5, "rejected": 1,
                      "unknown": 3, "skipped": 0}  # fmt: skip
    assert [states[i] for i in ids] == ["accepted"] * 4 + ["rejected", "accepted"]
    assert [states[i] for i in live] == ["unknown"] * 3


async def test_a_packed_outcome_for_a_row_that_has_one_leaves_the_older_and_is_recounted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", numbered(6), sender=SENDER)
        ids = await settle_two_packets(journal, campaign.id)
        # What only a broken fence could do: row 1 given an outcome behind the record.
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "INSERT INTO aiosms_outcomes (id, campaign, state, reason) "
                "VALUES (?, ?, 'unknown', 'elsewhere')",
                (ids[1], campaign.id),
            )
        shown = {r.id: (r.state.value, r.reason) for r in await journal.rows(campaign.id)}
        counts = await journal.counts(campaign.id)
    assert shown[ids[1]] == ("unknown", "elsewhere")
    assert [shown[i][0] for i in (ids[0], ids[2], ids[3], ids[5])] == ["accepted"] * 4
    assert counts == {"pending": 0, "claimed": 0, "sending": 0, "accepted": 4, "rejected": 1,
                      "unknown": 1, "skipped": 0}  # fmt: skip


async def test_a_packet_whose_outcomes_name_a_row_twice_settles_only_the_rows_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign, ids = await on_the_wire(journal, 2, "p")
        settled = await journal.finish(
            campaign.id, "p", [accepted(ids[0], 1, "1.00"), accepted(ids[0], 1, "1.00")]
        )
        totals = await journal.totals(campaign.id)
        # The run dies; the row its packet still holds is recovered as unknown.
        recovered = await journal.recover(campaign.id)
        states = [r.state.value for r in await journal.rows(campaign.id)]
    assert settled == 1
    assert totals == (1, "1.00")
    assert recovered == (1, 0)
    assert states == ["accepted", "unknown"]


async def test_a_row_requeued_while_its_packet_is_live_shows_pending_not_sending(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign, ids = await on_the_wire(journal, 2, "p")
        await journal.finish(campaign.id, "p", [rejected(ids[0])])
        await journal.requeue(campaign.id, "rejected")
        counts = await journal.counts(campaign.id)
        shown = [(r.id, r.state.value) for r in await journal.rows(campaign.id)]
        pending = [r.id for r in await journal.rows(campaign.id, state="pending")]
        sending = [r.id for r in await journal.rows(campaign.id, state="sending")]
    assert (counts["pending"], counts["sending"]) == (1, 1)
    assert shown == [(ids[0], "pending"), (ids[1], "sending")]
    assert (pending, sending) == ([ids[0]], [ids[1]])


async def test_an_accepted_outcome_with_a_reason_or_error_fields_keeps_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign, ids = await on_the_wire(journal, 2, "p")
        noted = Outcome(ids[1], "accepted", "mid-1", 1, None, "", 0, "", "queued", "")
        await journal.finish(campaign.id, "p", [accepted(ids[0], 1, None), noted])
        kept = where_kept(path)
        with contextlib.closing(sqlite3.connect(path)) as db:
            stored = db.execute(
                "SELECT error_class, error_code, error_text, reason FROM aiosms_outcomes "
                "WHERE id = ?",
                (ids[1],),
            ).fetchone()
    assert kept == (2, 0, 0)
    assert stored == ("", 0, "", "")
