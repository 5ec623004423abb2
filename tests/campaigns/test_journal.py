"""The journal's state machine, driven directly: import, claim, fenced begin_send, finish,
recovery, requeue, stop list and budget. Runs against every backend in ``BACKENDS``.

Expected states come from DESIGN.md's drawing: pending → claimed → sending →
accepted | rejected | unknown; skipped at import; unknown → pending only by requeue.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import anyio
import pytest

from aiosms.campaigns import Journal, NewRow, Outcome, SqliteJournal
from aiosms.campaigns._sqlite import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

OWNER = "host:1:worker"
LEASE = 60.0


def row(i: int, *, parts: int = 1, state: str = "pending", reason: str | None = None) -> NewRow:
    return NewRow(str(i), f"7911{i:07d}", f"text {i}", "MyShop", None, None, parts, state, reason)


async def campaign_with(journal: Journal, count: int, **kw: object) -> int:
    info = await journal.create_campaign("c", {})
    await journal.import_rows(info.id, [row(i) for i in range(count)], dedupe=True)
    return info.id


def accepted(row_id: int) -> Outcome:
    return Outcome(row_id, "accepted", f"id-{row_id}", 1, None, None, None, None, "queued")


async def test_counts_list_every_state_with_zeros(journal: Journal) -> None:
    campaign = await campaign_with(journal, 3)
    assert await journal.counts(campaign) == {
        "pending": 3,
        "claimed": 0,
        "sending": 0,
        "accepted": 0,
        "rejected": 0,
        "unknown": 0,
        "skipped": 0,
    }


async def test_importing_the_same_rows_twice_adds_nothing(journal: Journal) -> None:
    info = await journal.create_campaign("c", {})
    rows = [row(i) for i in range(10)]
    first = await journal.import_rows(info.id, rows, dedupe=True)
    second = await journal.import_rows(info.id, rows, dedupe=True)
    again = await journal.create_campaign("c", {"ignored": True})
    assert (first.added, second.added) == (10, 0)
    assert again.id == info.id
    assert (await journal.counts(info.id))["pending"] == 10


async def test_a_second_row_for_the_same_number_is_skipped_as_a_duplicate(
    journal: Journal,
) -> None:
    info = await journal.create_campaign("c", {})
    same = NewRow("b", "79110000001", "x", None, None, None, 1, "pending", None)
    result = await journal.import_rows(info.id, [row(1), same], dedupe=True)
    assert (result.added, result.skipped) == (2, 1)
    skipped = await journal.rows(info.id, state="skipped")
    assert [(r.key, r.reason) for r in skipped] == [("b", "duplicate number")]


async def test_a_stop_listed_number_is_skipped_at_import(journal: Journal) -> None:
    await journal.stoplist_add([("79110000002", "asked to stop")])
    campaign = await campaign_with(journal, 4)
    skipped = await journal.rows(campaign, state="skipped")
    assert [(r.phone, r.reason) for r in skipped] == [("79110000002", "stop-listed")]


async def test_a_claim_takes_pending_rows_under_one_owner_epoch_and_lease(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 10)
    first = await journal.claim(campaign, OWNER, 4, LEASE, None)
    second = await journal.claim(campaign, OWNER, 4, LEASE, None)
    assert [r.id for r in first.rows] == [1, 2, 3, 4]
    assert [r.id for r in second.rows] == [5, 6, 7, 8]
    assert second.epoch > first.epoch
    claimed = await journal.rows(campaign, state="claimed")
    assert {(r.owner, r.epoch) for r in claimed[:4]} == {(OWNER, first.epoch)}
    assert (await journal.counts(campaign))["claimed"] == 8


async def test_begin_send_turns_only_rows_matching_owner_and_epoch_to_sending(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 6)
    claim = await journal.claim(campaign, OWNER, 6, LEASE, None)
    e = claim.epoch
    wrong_owner = await journal.begin_send(campaign, "someone-else", [(1, e), (2, e)], "a1")
    wrong_epoch = await journal.begin_send(campaign, OWNER, [(3, e + 1), (4, e - 1)], "a2")
    right = await journal.begin_send(campaign, OWNER, [(5, e), (6, e)], "a3")
    assert (wrong_owner, wrong_epoch, right) == (set(), set(), {5, 6})
    counts = await journal.counts(campaign)
    assert (counts["claimed"], counts["sending"]) == (4, 2)


async def test_begin_send_refuses_rows_whose_lease_expired(journal: Journal) -> None:
    campaign = await campaign_with(journal, 3)
    claim = await journal.claim(campaign, OWNER, 3, 0.05, None)
    await anyio.sleep(0.1)
    changed = await journal.begin_send(
        campaign, OWNER, [(r.id, claim.epoch) for r in claim.rows], "a"
    )
    assert changed == set()
    assert (await journal.counts(campaign))["sending"] == 0


async def test_rows_whose_lease_expired_are_claimed_again_and_the_old_owner_is_fenced(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 2)
    old = await journal.claim(campaign, "old", 2, 0.05, None)
    await anyio.sleep(0.1)
    new = await journal.claim(campaign, "new", 2, LEASE, None)
    assert [r.id for r in new.rows] == [1, 2]
    assert await journal.begin_send(campaign, "old", [(1, old.epoch)], "a-old") == set()
    assert await journal.begin_send(campaign, "new", [(1, new.epoch)], "a-new") == {1}


async def test_finish_settles_each_outcome_of_a_packet_by_attempt(journal: Journal) -> None:
    campaign = await campaign_with(journal, 3)
    claim = await journal.claim(campaign, OWNER, 3, LEASE, None)
    await journal.begin_send(campaign, OWNER, [(r.id, claim.epoch) for r in claim.rows], "att")
    outcomes = [
        accepted(1),
        Outcome(2, "rejected", None, 1, None, "RecipientError", -12, "bad number", None),
        Outcome(3, "unknown", None, 1, None, "DeliveryUnknownError", None, "reset", None),
    ]
    assert await journal.finish(campaign, "other-attempt", outcomes) == 0
    assert await journal.finish(campaign, "att", outcomes) == 3
    rows = {r.id: r for r in await journal.rows(campaign)}
    assert (rows[1].state, rows[1].message_id, rows[1].attempt) == ("accepted", "id-1", "att")
    assert (rows[2].state, rows[2].error_class, rows[2].error_code) == (
        "rejected",
        "RecipientError",
        -12,
    )
    assert (rows[3].state, rows[3].error_text) == ("unknown", "reset")


async def test_recovery_marks_sending_unknown_and_puts_claimed_back_to_pending(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 4)
    claim = await journal.claim(campaign, OWNER, 4, LEASE, None)
    await journal.begin_send(campaign, OWNER, [(1, claim.epoch), (2, claim.epoch)], "att")
    assert await journal.recover(campaign) == (2, 2)
    rows = {r.id: r for r in await journal.rows(campaign)}
    assert [rows[i].state for i in (1, 2, 3, 4)] == ["unknown", "unknown", "pending", "pending"]
    assert rows[1].reason == "worker lost"


async def test_a_late_outcome_still_settles_a_row_marked_unknown_by_recovery(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 1)
    claim = await journal.claim(campaign, OWNER, 1, LEASE, None)
    await journal.begin_send(campaign, OWNER, [(1, claim.epoch)], "att")
    await journal.recover(campaign)
    assert await journal.finish(campaign, "att", [accepted(1)]) == 1
    (settled,) = await journal.rows(campaign)
    assert (settled.state, settled.message_id) == ("accepted", "id-1")


async def test_unknown_rows_go_back_to_pending_only_through_requeue(journal: Journal) -> None:
    campaign = await campaign_with(journal, 2)
    claim = await journal.claim(campaign, OWNER, 2, LEASE, None)
    await journal.begin_send(campaign, OWNER, [(r.id, claim.epoch) for r in claim.rows], "a")
    await journal.recover(campaign)
    # Neither a claim nor a new recovery takes them.
    assert (await journal.claim(campaign, OWNER, 2, LEASE, None)).rows == []
    assert await journal.recover(campaign) == (0, 0)
    assert await journal.requeue(campaign, "unknown") == 2
    assert (await journal.counts(campaign))["pending"] == 2


async def test_a_number_stop_listed_after_import_is_skipped_when_claimed(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, 3)
    await journal.stoplist_add([("79110000001", "complained")])
    claim = await journal.claim(campaign, OWNER, 3, LEASE, None)
    assert [r.id for r in claim.rows] == [1, 3]
    (skipped,) = await journal.rows(campaign, state="skipped")
    assert (skipped.phone, skipped.reason) == ("79110000001", "stop-listed")


async def test_the_stop_list_is_shared_by_campaigns_and_can_be_edited(journal: Journal) -> None:
    assert await journal.stoplist_add([("79110000001", "a"), ("79110000002", "b")]) == 2
    assert await journal.stoplist_add([("79110000001", "again")]) == 0
    assert await journal.stoplist_remove(["79110000002", "79119999999"]) == 1
    assert await journal.stoplist() == [("79110000001", "a")]


async def test_a_claim_stays_within_the_budget_in_parts(journal: Journal) -> None:
    info = await journal.create_campaign("c", {})
    await journal.import_rows(info.id, [row(i, parts=2) for i in range(5)], dedupe=True)
    first = await journal.claim(info.id, OWNER, 10, LEASE, 5)
    assert ([r.id for r in first.rows], first.budget_exhausted) == ([1, 2], True)
    second = await journal.claim(info.id, OWNER, 10, LEASE, 5)
    assert (second.rows, second.budget_exhausted) == ([], True)


async def test_release_puts_only_the_owners_claimed_rows_back(journal: Journal) -> None:
    campaign = await campaign_with(journal, 4)
    await journal.claim(campaign, "a", 2, LEASE, None)
    await journal.claim(campaign, "b", 2, LEASE, None)
    assert await journal.release(campaign, "a") == 2
    counts = await journal.counts(campaign)
    assert (counts["pending"], counts["claimed"]) == (2, 2)


async def test_delivery_states_are_stored_beside_the_outcome(journal: Journal) -> None:
    campaign = await campaign_with(journal, 2)
    claim = await journal.claim(campaign, OWNER, 2, LEASE, None)
    await journal.begin_send(campaign, OWNER, [(r.id, claim.epoch) for r in claim.rows], "a")
    await journal.finish(campaign, "a", [accepted(1), accepted(2)])
    assert await journal.tracking_page(campaign, after=0, limit=10) == [
        (1, "id-1", "queued"),
        (2, "id-2", "queued"),
    ]
    await journal.store_delivery(campaign, [(1, "delivered", 4)])
    assert await journal.tracking_page(campaign, after=0, limit=10) == [(2, "id-2", "queued")]
    rows = await journal.rows(campaign, state="accepted")
    assert [(r.state, r.delivery) for r in rows] == [
        ("accepted", "delivered"),
        ("accepted", "queued"),
    ]


async def test_a_paused_campaign_keeps_its_reason(journal: Journal) -> None:
    campaign = await campaign_with(journal, 1)
    await journal.set_campaign_state(campaign, "paused", "out of money")
    info = await journal.get_campaign("c")
    assert info is not None
    assert (info.state, info.reason) == ("paused", "out of money")


# -- SQLite specifics --------------------------------------------------------------------


async def test_the_sqlite_file_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    async with SqliteJournal(path) as journal:
        await campaign_with(journal, 3)
        modes = file_modes(tmp_path)
    assert sorted(modes) == ["private.db", "private.db-shm", "private.db-wal"]
    assert set(modes.values()) == {0o600}


async def test_the_sqlite_schema_is_versioned_and_its_tables_prefixed(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    async with SqliteJournal(path) as journal:
        await campaign_with(journal, 1)
        assert await journal.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        version = db.execute("SELECT value FROM aiosms_meta WHERE key='schema_version'").fetchone()
        pragmas = db.execute("PRAGMA journal_mode").fetchone()
    assert "aiosms_messages" in tables
    assert all(t.startswith("aiosms_") for t in tables)
    assert version == (str(SCHEMA_VERSION),)
    assert pragmas == ("wal",)


async def test_a_sqlite_journal_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    async with SqliteJournal(path) as journal:
        await campaign_with(journal, 1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE aiosms_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="version 99"):
        async with SqliteJournal(path) as journal:
            await journal.counts(1)


def file_modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_an_existing_journal_readable_by_others_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o644)

    async def open_it() -> None:
        async with SqliteJournal(path) as journal:
            await journal.stoplist()

    with caplog.at_level("WARNING", logger="aiosms.campaigns"):
        anyio.run(open_it)
    assert "readable by others" in caplog.text
