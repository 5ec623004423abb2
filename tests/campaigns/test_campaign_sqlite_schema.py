"""SqliteJournal's schema across versions: a journal written by an earlier version
(schema 1: one ``(campaign, state)`` index, no table of counts; schema 2: claims written
into their rows; schema 3: outcomes written into their rows, claims as id ranges; schema
4: an outcome row for every settled row, none kept in packet records) opens,
is migrated in place, keeps every row and count (claimed rows, provably unsent, are
pending again), and its campaign runs on to the end.

Real SQLite files in tmp_path, the in-process fake my-sms, asyncio and trio.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, SqliteJournal
from aiosms.campaigns._models import Outcome
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"


def messages(count: int) -> list[Message]:
    return [Message(to=f"7911{i:07d}", text=f"Sale {i}", key=f"row-{i}") for i in range(count)]


# Schema 3 settled a row in place: its outcome's columns written into the message row.
_SETTLE_IN_PLACE = """
UPDATE aiosms_messages AS m SET state = o.state, packet = o.packet, settled_at = o.settled_at,
    message_id = o.message_id, parts = COALESCE(o.parts, m.parts), cost = o.cost,
    delivery = o.delivery, error_class = o.error_class, error_code = o.error_code,
    error_text = o.error_text, reason = o.reason, delivery_code = o.delivery_code,
    delivery_at = o.delivery_at
FROM aiosms_outcomes AS o WHERE o.id = m.id
"""
_SCHEMA_3_FENCE = (
    "CREATE TRIGGER aiosms_messages_fenced_from_older_workers "
    "BEFORE UPDATE OF state ON aiosms_messages WHEN NEW.state IN ('claimed', 'sending') "
    "BEGIN SELECT RAISE(ABORT, 'this journal is at schema 3: stop workers of older aiosms "
    "versions'); END"
)


def as_schema(path: Path, version: int) -> None:
    """Turn a journal file into what schema ``version`` (1 to 4) wrote.

    Schema 4: every accepted outcome a row of ``aiosms_outcomes`` (none kept in a
    packet record), claims inserted with ``schema = 4``, its fences naming schema 4.

    Schema 3: outcomes written into their message rows (no ``aiosms_outcomes``, no
    ``aiosms_returned``, no watermark), claims as id ranges (a live claim's rows are the
    pending rows of its range, no ``ids`` or ``schema`` columns), its one trigger.
    Schemas 1 and 2, from that: packets and claims as states of their rows (``sending``
    with attempt, owner, epoch and send time; ``claimed`` with owner, epoch and lease),
    no tables of claims and packets; schema 1 also its state index and no counts table.
    """
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        _as_schema_4(db)
        if version < 4:
            _as_schema_3(db)
        if version < 3:
            _as_schema_2(db)
        if version == 1:
            db.execute("DROP TABLE aiosms_counts")
            db.execute("DROP INDEX aiosms_messages_pending")
            db.execute("DROP INDEX aiosms_messages_claimed")
            db.execute("CREATE INDEX aiosms_messages_state ON aiosms_messages (campaign, state)")
        db.execute("UPDATE aiosms_meta SET value = ? WHERE key = 'schema_version'", (str(version),))


def _as_schema_4(db: sqlite3.Connection) -> None:
    packed = db.execute(
        "SELECT id, campaign, settled_at, accepted FROM aiosms_attempts WHERE accepted IS NOT NULL"
    ).fetchall()
    for packet, campaign, settled_at, accepted in packed:
        db.executemany(
            "INSERT INTO aiosms_outcomes (id, state, message_id, parts, cost, delivery, "
            "campaign, packet, settled_at) VALUES (?, 'accepted', ?, ?, ?, ?, ?, ?, ?)",
            [(*entry, campaign, packet, settled_at) for entry in json.loads(accepted)],
        )
    db.execute("DROP INDEX aiosms_attempts_unexpanded")
    db.execute("ALTER TABLE aiosms_attempts DROP COLUMN accepted")
    db.execute("ALTER TABLE aiosms_attempts DROP COLUMN settled_at")
    db.execute("UPDATE aiosms_claims SET schema = 4")
    refusal = (
        "BEGIN SELECT RAISE(ABORT, 'this journal is at schema 4: stop workers of older "
        "aiosms versions'); END"
    )
    for name, when in (
        ("messages_fenced_from_older_workers", "BEFORE UPDATE OF state ON aiosms_messages "
         "WHEN NEW.requeued IS OLD.requeued"),
        ("claims_fenced_from_older_workers", "BEFORE INSERT ON aiosms_claims "
         "WHEN NEW.schema < 4"),
        ("claims_end_with_their_rows_given_back", "BEFORE DELETE ON aiosms_claims "
         "WHEN OLD.remaining > 0"),
    ):  # fmt: skip
        db.execute(f"DROP TRIGGER aiosms_{name}")
        db.execute(f"CREATE TRIGGER aiosms_{name} {when} {refusal}")


def _as_schema_3(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER aiosms_messages_fenced_from_older_workers")
    db.execute("DROP TRIGGER aiosms_claims_fenced_from_older_workers")
    db.execute("DROP TRIGGER aiosms_claims_end_with_their_rows_given_back")
    db.execute(_SETTLE_IN_PLACE)
    live = set()
    for (ids,) in db.execute("SELECT ids FROM aiosms_attempts WHERE unsettled > 0").fetchall():
        live.update(json.loads(ids))
    for campaign, first, last, remaining in db.execute(
        "SELECT campaign, first_id, last_id, remaining FROM aiosms_claims"
    ).fetchall():
        # Schema 3 could only tell a claim's rows by its range: the scenarios keep
        # each live claim a run of pending rows no other claim or packet shares.
        found = {
            i
            for (i,) in db.execute(
                "SELECT id FROM aiosms_messages WHERE campaign = ? AND state = 'pending' "
                "AND id BETWEEN ? AND ?",
                (campaign, first, last),
            )
        }
        assert len(found - live) == remaining, "a live claim schema 3 could not have written"
    db.execute("DROP TABLE aiosms_outcomes")
    db.execute("DROP TABLE aiosms_returned")
    db.execute("ALTER TABLE aiosms_campaigns DROP COLUMN claimed_to")
    db.execute("DROP TRIGGER aiosms_claim_rows_end_with_their_claim")
    db.execute("DROP TABLE aiosms_claim_rows")
    db.execute("ALTER TABLE aiosms_claims DROP COLUMN schema")
    db.execute("ALTER TABLE aiosms_claims DROP COLUMN sent")
    db.execute("ALTER TABLE aiosms_messages DROP COLUMN requeued")
    db.execute(_SCHEMA_3_FENCE)


def _as_schema_2(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER aiosms_messages_fenced_from_older_workers")
    packets = db.execute(
        "SELECT id, attempt, owner, epoch, started_at, ids, unsettled FROM aiosms_attempts"
    ).fetchall()
    for packet, attempt, owner, epoch, started, ids, unsettled in packets:
        db.execute(
            "UPDATE aiosms_messages SET attempt = ?, owner = ?, epoch = ?, sent_at = ? "
            "WHERE packet = ?",
            (attempt, owner, epoch, started, packet),
        )
        if unsettled:
            marks = ",".join("?" * len(json.loads(ids)))
            db.execute(
                "UPDATE aiosms_messages SET state = 'sending', attempt = ?, owner = ?, "
                f"epoch = ?, sent_at = ? WHERE state = 'pending' AND id IN ({marks})",
                (attempt, owner, epoch, started, *json.loads(ids)),
            )
    for campaign, epoch, owner, lease, first, last in db.execute(
        "SELECT campaign, epoch, owner, lease_until, first_id, last_id FROM aiosms_claims "
        "WHERE remaining > 0"
    ).fetchall():
        db.execute(
            "UPDATE aiosms_messages SET state = 'claimed', owner = ?, epoch = ?, "
            "lease_until = ? WHERE campaign = ? AND state = 'pending' AND id BETWEEN ? AND ?",
            (owner, epoch, lease, campaign, first, last),
        )
    db.execute("DROP TABLE aiosms_claims")
    db.execute("DROP TABLE aiosms_attempts")
    db.execute("ALTER TABLE aiosms_messages DROP COLUMN packet")
    db.execute(
        "CREATE INDEX aiosms_messages_claimed ON aiosms_messages (campaign, lease_until) "
        "WHERE state = 'claimed'"
    )


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'aiosms_messages' "
            "AND name NOT LIKE 'sqlite_autoindex%'"
        )
        return {name for (name,) in rows}


@pytest.mark.parametrize("version", [1, 2, 3, 4])
async def test_an_older_journal_is_migrated_with_its_counts_and_runs_to_the_end(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.db"
    fake = FakeMySms(balance=Decimal(10**9))
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "old", messages(30), sender=SENDER)
        # Rows in several states, as an interrupted run of the old version leaves them:
        # 4 accepted, 3 left sending (the worker died), 5 claimed, 18 pending.
        claim = await journal.claim(campaign.id, "old-worker", 12, 60.0, None)
        first = [(row.id, claim.epoch) for row in claim.rows[:7]]
        await journal.begin_send(campaign.id, "old-worker", first, "attempt-1")
        done = [Outcome(i, "accepted", f"id-{i}", 1, None, None, None, None, "queued")
                for i, _ in first[:4]]  # fmt: skip
        await journal.finish(campaign.id, "attempt-1", done)
        before = await campaign.counts()
    as_schema(path, version)
    with contextlib.closing(sqlite3.connect(path)) as db:
        found = dict(db.execute("SELECT state, COUNT(*) FROM aiosms_messages GROUP BY state"))
    # Schema 3 wrote claims and packets as records of their own, their rows pending;
    # schema 4 wrote outcomes as rows of their own too.
    if version == 4:
        assert found == {"pending": 30}
    else:
        written = {"pending": 26} if version == 3 else {"pending": 18, "claimed": 5, "sending": 3}
        assert found == {**written, "accepted": 4}

    async with SqliteJournal(path) as journal:
        assert await journal.schema_version() == 5
        campaign = await Campaign.open(journal, "old")
        migrated = await campaign.counts()
        async with fake.client() as sms:
            summary = await campaign.run(sms, packet_size=5)
    assert before == {"pending": 18, "claimed": 5, "sending": 3, "accepted": 4,
                      "rejected": 0, "unknown": 0, "skipped": 0}  # fmt: skip
    # The old worker's claimed rows were never sent: pending again. Its packet, a record
    # of its own since schema 3, is still on the wire until recovery; rows schemas 1
    # and 2 marked sending have no record to wait on, and are unknown at once.
    # A schema-4 claim stays the old worker's (its packets would settle as they did)
    # until start-up recovery.
    if version == 4:
        assert migrated == before
    else:
        on_the_wire = {"sending": 3} if version == 3 else {"sending": 0, "unknown": 3}
        assert migrated == {**before, "pending": 23, "claimed": 0, **on_the_wire}
    assert indexes(path) == {"aiosms_messages_phone", "aiosms_messages_pending"}
    # The 3 rows found sending become unknown (never resent); the other 23 go out once.
    assert (summary.state, summary.counts["accepted"], summary.counts["unknown"]) == (
        "done",
        27,
        3,
    )
    assert len(fake.ledger) == 23
    assert max(Counter(entry.phone for entry in fake.ledger).values()) == 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        events = db.execute("SELECT detail FROM aiosms_events WHERE kind = 'migrate'").fetchall()
    assert events == [(f"schema {version} → 5",)]


async def test_counts_kept_by_the_journal_equal_a_count_of_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "counts.db"
    fake = FakeMySms(balance=Decimal(15))  # ten messages at 1.5, then funds run out
    fake.reject_number("79110000003")
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", messages(40), sender=SENDER)
        await journal.stoplist_add([("79110000007", "asked")])
        async with fake.client() as sms:
            paused = await campaign.run(sms, packet_size=4, max_concurrency=1)
        await campaign.requeue("rejected")
        kept = await campaign.counts()
    # A row's state: its outcome's, or the import's judgement.
    with contextlib.closing(sqlite3.connect(path)) as db:
        counted = dict(
            db.execute(
                "SELECT COALESCE(o.state, m.state), COUNT(*) FROM aiosms_messages AS m "
                "LEFT JOIN aiosms_outcomes AS o ON o.id = m.id GROUP BY 1"
            )
        )
    assert paused.paused
    assert {state: n for state, n in kept.items() if n} == counted
    assert kept["accepted"] == 10
    assert kept["skipped"] == 1


async def test_a_worker_of_an_older_version_cannot_claim_or_send_in_a_migrated_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with SqliteJournal(path) as journal:
        campaign = await Campaign.create(journal, "c", messages(3), sender=SENDER)
        claim = await journal.claim(campaign.id, "new-worker", 3, 60.0, None)
    # What a worker of schema 2, still running on the file, writes to claim or send.
    with contextlib.closing(sqlite3.connect(path)) as db:
        for state in ("claimed", "sending"):
            with pytest.raises(sqlite3.IntegrityError, match="schema 5"):
                db.execute("UPDATE aiosms_messages SET state = ? WHERE id = ?", (state, 1))
    async with SqliteJournal(path) as journal:
        rows = await journal.rows(campaign.id, state="claimed")
    assert [r.id for r in rows] == [r.id for r in claim.rows]
