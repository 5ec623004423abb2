"""The SQLite journal at schema 4: rows given back (``aiosms_returned``) by a released
claim or a requeue, read and claimed again; outcomes stored with and without SQLite's
JSON functions.

Real SQLite files in tmp_path, the in-process fake my-sms, asyncio and trio.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, Outcome, Row, SqliteJournal, _sqlite_schema
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
LEASE = 60.0


def phone(i: int) -> str:
    return f"7911{i:07d}"


def numbered(count: int) -> list[Message]:
    return [Message(to=phone(i), text=f"Sale {i}", key=f"row-{i}") for i in range(count)]


def accepted(row_id: int, message_id: str, parts: int | None, cost: str | None) -> Outcome:
    return Outcome(row_id, "accepted", message_id, parts, cost, None, None, None, "queued")


def sent_keys(fake: FakeMySms) -> Counter[str]:
    """How often the fake accepted each row, by its key (``row-i`` from ``Sale i``)."""
    return Counter(f"row-{entry.text.removeprefix('Sale ')}" for entry in fake.ledger)


def keys(rows: list[Row]) -> list[str]:
    return [r.key for r in rows]


async def test_rows_skipped_at_import_and_requeued_below_and_above_the_watermark_are_claimed_once(
    tmp_path: Path,
) -> None:
    # Every fifth row repeats the number before it: skipped at import as a duplicate.
    messages = [
        Message(to=phone(i - 1 if i % 5 == 4 else i), text=f"Sale {i}", key=f"row-{i}")
        for i in range(20)
    ]
    duplicates = [4, 9, 14, 19]
    fake = FakeMySms(balance=Decimal(10**6))
    async with SqliteJournal(tmp_path / "j.db") as journal:
        campaign = await Campaign.create(journal, "c", messages, sender=SENDER)
        cid = campaign.id
        ids = {r.key: r.id for r in await journal.rows(cid)}
        assert keys(await journal.rows(cid, state="skipped")) == [f"row-{i}" for i in duplicates]
        # Part of the campaign runs: twelve rows, up to row 13 (the watermark).
        first = await journal.claim(cid, "w1", 12, LEASE, None)
        done = [r.id for r in first.rows]
        assert done == [ids[f"row-{i}"] for i in (0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13)]
        await journal.begin_send(cid, "w1", [(i, first.epoch) for i in done], "a1")
        await journal.finish(cid, "a1", [accepted(i, f"mid-{i}", 1, "1.5") for i in done])
        assert await campaign.requeue("skipped") == 4
        requeued = await campaign.counts()
        taken: list[int] = []
        for turn in range(10):
            claim = await journal.claim(cid, f"owner-{turn}", 3, LEASE, None)
            if not claim.rows:
                break
            taken += [r.id for r in claim.rows]
        claimed = await campaign.counts()
        for turn in range(10):
            await journal.release(cid, f"owner-{turn}")
        async with fake.client() as sms:
            summary = await campaign.run(sms, packet_size=3)

    left = [4, 9, 14, 15, 16, 17, 18, 19]
    assert requeued == {"pending": 8, "claimed": 0, "sending": 0, "accepted": 12,
                        "rejected": 0, "unknown": 0, "skipped": 0}  # fmt: skip
    assert sorted(taken) == [ids[f"row-{i}"] for i in left]
    assert claimed == {**requeued, "pending": 0, "claimed": 8}
    assert sent_keys(fake) == Counter(f"row-{i}" for i in left)
    assert (summary.state, summary.counts["accepted"], summary.counts["pending"]) == ("done", 20, 0)


async def run_with_every_outcome(path: Path) -> tuple[dict[str, int], list[Row], FakeMySms]:
    """24 rows in packets of 4, one at a time: the first packet's reply is lost (its four
    rows unknown), row 5's number is refused, the others are accepted."""
    fake = FakeMySms(balance=Decimal(10**6))
    fake.reject_number(phone(5))
    fake.faults.add(Fault.reset_after(), endpoint="send")
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", numbered(24), sender=SENDER)
        async with fake.client() as sms:
            summary = await campaign.run(sms, packet_size=4, max_concurrency=1)
        return dict(summary.counts), await journal.rows(campaign.id), fake


def what_became_of(rows: list[Row], fake: FakeMySms) -> list[tuple[object, ...]]:
    """Each row's outcome, its message id told apart by whether the fake gave it."""
    given = {f"row-{e.text.removeprefix('Sale ')}": e.id for e in fake.ledger}
    return [
        (r.key, r.state.value, r.parts, r.cost, r.error_class, r.error_code, r.reason,
         r.delivery, r.message_id is not None and r.message_id == given.get(r.key))
        for r in rows
    ]  # fmt: skip


async def test_without_sqlites_json_functions_a_campaign_ends_with_the_same_rows_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_json = await run_with_every_outcome(tmp_path / "with.db")
    asked: list[bool] = []

    def no_json_functions() -> bool:
        asked.append(False)
        return False

    monkeypatch.setattr(_sqlite_schema, "json_functions", no_json_functions)
    without = await run_with_every_outcome(tmp_path / "without.db")

    expected = {"pending": 0, "claimed": 0, "sending": 0, "accepted": 19, "rejected": 1,
                "unknown": 4, "skipped": 0}  # fmt: skip
    assert with_json[0] == without[0] == expected
    assert asked
    became = what_became_of(without[1], without[2])
    assert became == what_became_of(with_json[1], with_json[2])
    by_state = Counter(b[1] for b in became)
    assert by_state == {"accepted": 19, "rejected": 1, "unknown": 4}
    assert [b[0] for b in became if b[1] == "unknown"] == ["row-0", "row-1", "row-2", "row-3"]
    assert [(b[0], b[5]) for b in became if b[1] == "rejected"] == [("row-5", -12)]
    # Every accepted row carries the id the gateway gave it, and the state it reported.
    assert all(b[8] and b[7] == "queued" for b in became if b[1] == "accepted")
    with contextlib.closing(sqlite3.connect(tmp_path / "without.db")) as db:
        kept = {s: n for s, n in db.execute("SELECT state, n FROM aiosms_counts") if n}
        stored = dict(db.execute("SELECT state, COUNT(*) FROM aiosms_outcomes GROUP BY state"))
    assert kept == stored == {"accepted": 19, "rejected": 1, "unknown": 4}


async def test_rows_given_back_by_a_released_claim_read_track_total_and_purge_as_the_scenario_says(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(
            journal, "f", numbered(12), invalid=[("bad", "12345", "not a number")], sender=SENDER
        )
        cid = campaign.id
        ids = {r.key: r.id for r in await journal.rows(cid)}

        def of(*numbers: int) -> list[int]:
            return [ids[f"row-{i}"] for i in numbers]

        # Claim A takes rows 0-5; its first packet settles 0-2; released, 3-5 go back.
        a = await journal.claim(cid, "w1", 6, LEASE, None)
        assert [r.id for r in a.rows] == of(0, 1, 2, 3, 4, 5)
        await journal.begin_send(cid, "w1", [(i, a.epoch) for i in of(0, 1, 2)], "p1")
        await journal.finish(
            cid,
            "p1",
            [
                accepted(ids["row-0"], "mid-0", 2, "3.0"),
                Outcome(ids["row-1"], "rejected", None, 1, None, "RecipientError", -12,
                        "refused", None),
                Outcome(ids["row-2"], "unknown", None, None, None, "DeliveryUnknownError",
                        None, "no reply", None),
            ],
        )  # fmt: skip
        assert await journal.release(cid, "w1") == 3
        # Claim B takes the three given back first, then row 6 past the watermark.
        b = await journal.claim(cid, "w2", 4, LEASE, None)
        assert [r.id for r in b.rows] == of(3, 4, 5, 6)
        await journal.begin_send(cid, "w2", [(i, b.epoch) for i in of(3, 4)], "p2")
        await journal.finish(
            cid, "p2", [accepted(ids["row-3"], "mid-3", 1, "1.5"),
                        Outcome(ids["row-4"], "accepted", "mid-4", None, None, None, None,
                                None, None)],
        )  # fmt: skip
        await journal.begin_send(cid, "w2", [(ids["row-5"], b.epoch)], "p3")
        # Claim C passes over row 7 (stop-listed since import) and takes row 8, released.
        await journal.stoplist_add([(phone(7), "asked")])
        c = await journal.claim(cid, "w3", 1, LEASE, None)
        assert [r.id for r in c.rows] == of(8)
        assert await journal.release(cid, "w3") == 1

        every = await journal.rows(cid)
        shown = {
            state: await journal.rows(cid, state=state)
            for state in ("pending", "claimed", "sending", "accepted", "rejected", "unknown",
                          "skipped")
        }  # fmt: skip
        paged = await journal.rows(cid, state="pending", after=ids["row-8"], limit=2)
        counts = await journal.counts(cid)
        tracked = await journal.tracking_page(cid, after=0, limit=10)
        await journal.store_delivery(
            cid, [(ids["row-0"], "delivered", 0), (ids["row-4"], "undelivered", 3)]
        )
        tracked_after = await journal.tracking_page(cid, after=0, limit=10)
        delivered = {r.key: r for r in await journal.rows(cid, state="accepted")}
        totals = await journal.totals(cid)
        purged_while_live = await journal.purge_campaigns(time.time() + 3600)
        recovered = await journal.recover(cid)
        after_recovery = await journal.counts(cid)
        cut = time.time()
        await anyio.sleep(0.05)
        later = await Campaign.create(journal, "later", numbered(2), sender=SENDER)
        purged = await journal.purge_campaigns(cut)
        kept = (await journal.list_campaigns(), await journal.counts(later.id))

    assert keys(every) == [f"row-{i}" for i in range(12)] + ["bad"]
    assert {state: keys(rows) for state, rows in shown.items()} == {
        "pending": ["row-8", "row-9", "row-10", "row-11"],
        "claimed": ["row-6"],
        "sending": ["row-5"],
        "accepted": ["row-0", "row-3", "row-4"],
        "rejected": ["row-1"],
        "unknown": ["row-2"],
        "skipped": ["row-7", "bad"],
    }
    assert [r.state.value for r in every] == [
        "accepted", "rejected", "unknown", "accepted", "accepted", "sending", "claimed",
        "skipped", "pending", "pending", "pending", "pending", "skipped",
    ]  # fmt: skip
    assert keys(paged) == ["row-9", "row-10"]
    assert counts == {"pending": 4, "claimed": 1, "sending": 1, "accepted": 3, "rejected": 1,
                      "unknown": 1, "skipped": 2}  # fmt: skip
    (claimed,), (sending,) = shown["claimed"], shown["sending"]
    assert (claimed.owner, claimed.epoch, claimed.attempt) == ("w2", b.epoch, None)
    assert (sending.owner, sending.epoch, sending.attempt) == ("w2", b.epoch, "p3")
    assert sending.sent_at is not None
    assert all(r.owner is None and r.epoch is None for r in shown["pending"])
    rejected, unknown = shown["rejected"][0], shown["unknown"][0]
    assert (rejected.error_class, rejected.error_code, rejected.error_text) == (
        "RecipientError",
        -12,
        "refused",
    )
    assert (unknown.error_class, unknown.attempt, unknown.owner) == (
        "DeliveryUnknownError",
        "p1",
        "w1",
    )
    skipped = {r.key: r for r in shown["skipped"]}
    assert (skipped["row-7"].reason, skipped["bad"].reason) == (
        "stop-listed",
        "invalid: not a number",
    )
    assert skipped["row-7"].settled_at is not None
    assert skipped["bad"].settled_at is None

    assert tracked == [(ids["row-0"], "mid-0", "queued"), (ids["row-3"], "mid-3", "queued"),
                       (ids["row-4"], "mid-4", None)]  # fmt: skip
    assert tracked_after == [(ids["row-3"], "mid-3", "queued")]
    assert [(k, r.delivery, r.delivery_at is not None) for k, r in delivered.items()] == [
        ("row-0", "delivered", True),
        ("row-3", "queued", False),
        ("row-4", "undelivered", True),
    ]
    assert [(k, r.parts, r.cost, r.attempt) for k, r in delivered.items()] == [
        ("row-0", 2, Decimal("3.0"), "p1"),
        ("row-3", 1, Decimal("1.5"), "p2"),
        ("row-4", 1, None, "p2"),
    ]
    # Parts of accepted rows (row 4's from its message row), and their price.
    assert (totals[0], Decimal(totals[1] or "NaN")) == (4, Decimal("4.5"))

    # A live claim and a live packet keep the campaign; recovered, it goes.
    assert purged_while_live == []
    assert recovered == (1, 1)
    assert after_recovery == {**counts, "pending": 5, "claimed": 0, "sending": 0, "unknown": 2}
    assert purged == ["f"]
    assert [info.name for info in kept[0]] == ["later"]
    assert kept[1]["pending"] == 2
    with contextlib.closing(sqlite3.connect(path)) as db:
        left = {
            table: db.execute(f"SELECT COUNT(*) FROM {table} WHERE campaign = ?", (cid,)).fetchone()
            for table in ("aiosms_messages", "aiosms_outcomes", "aiosms_returned",
                          "aiosms_claims", "aiosms_attempts", "aiosms_counts")
        }  # fmt: skip
    assert left == dict.fromkeys(left, (0,))
