"""Claims beside each other: several owners, several campaigns, packets across claims,
leases kept alive, rows requeued while a claim lives. Runs against every backend in
``BACKENDS``: a claim is a record of its own in SQLite and a mark on each row in
PostgreSQL, and the contract is the same.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from aiosms.campaigns import Journal, NewRow, Outcome, SqliteJournal

pytestmark = pytest.mark.anyio

LEASE = 60.0


def row(i: int, *, parts: int = 1) -> NewRow:
    return NewRow(str(i), f"7911{i:07d}", f"text {i}", "MyShop", None, None, parts, "pending", None)


async def campaign_with(journal: Journal, name: str, keys: range) -> int:
    info = await journal.create_campaign(name, {})
    await journal.import_rows(info.id, [row(i) for i in keys], dedupe=True)
    return info.id


def unknown(row_id: int) -> Outcome:
    return Outcome(row_id, "unknown", None, None, None, "DeliveryUnknownError", None, "?", None)


async def test_claims_of_two_owners_never_share_a_row_and_together_take_every_row(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(25))
    taken: list[int] = []
    for turn in range(4):
        claim = await journal.claim(campaign, f"owner-{turn % 2}", 7, LEASE, None)
        taken += [r.id for r in claim.rows]
    assert sorted(taken) == sorted(set(taken))
    assert len(taken) == 25
    assert (await journal.counts(campaign))["claimed"] == 25


async def test_claimed_rows_are_listed_as_claimed_under_their_claims_owner_and_epoch(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(10))
    first = await journal.claim(campaign, "one", 3, LEASE, None)
    second = await journal.claim(campaign, "two", 3, LEASE, None)
    claimed = await journal.rows(campaign, state="claimed")
    pending = await journal.rows(campaign, state="pending")
    every = await journal.rows(campaign)
    expected = [(r.id, "one", first.epoch) for r in first.rows]
    expected += [(r.id, "two", second.epoch) for r in second.rows]
    assert [(r.id, r.owner, r.epoch) for r in claimed] == expected
    assert [r.id for r in pending] == [r.id for r in every][6:]
    assert [r.state.value for r in every] == ["claimed"] * 6 + ["pending"] * 4
    # Pages: one row at a time, after the last one seen.
    page = await journal.rows(campaign, state="claimed", after=claimed[2].id, limit=2)
    assert [r.id for r in page] == [claimed[3].id, claimed[4].id]


async def test_a_packet_with_rows_of_two_claims_turns_sending_in_both(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(6))
    first = await journal.claim(campaign, "me", 3, LEASE, None)
    second = await journal.claim(campaign, "me", 3, LEASE, None)
    packet = [(r.id, first.epoch) for r in first.rows[1:]]
    packet += [(r.id, second.epoch) for r in second.rows[:2]]
    changed = await journal.begin_send(campaign, "me", packet, "attempt")
    assert changed == {row_id for row_id, _ in packet}
    counts = await journal.counts(campaign)
    assert (counts["claimed"], counts["sending"]) == (2, 4)
    assert {r.id for r in await journal.rows(campaign, state="claimed")} == {
        first.rows[0].id,
        second.rows[2].id,
    }
    # Released, the rest is pending again; the packet's rows stay sending.
    assert await journal.release(campaign, "me") == 2
    assert (await journal.counts(campaign))["sending"] == 4


async def test_the_same_row_is_not_turned_sending_twice(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(3))
    claim = await journal.claim(campaign, "me", 3, LEASE, None)
    rows = [(r.id, claim.epoch) for r in claim.rows]
    assert len(await journal.begin_send(campaign, "me", rows[:2], "a1")) == 2
    assert await journal.begin_send(campaign, "me", rows, "a2") == {rows[2][0]}
    assert (await journal.counts(campaign))["sending"] == 3


async def test_campaigns_whose_rows_interleave_claim_only_their_own(journal: Journal) -> None:
    # Imported in turns, so that the two campaigns' row ids interleave.
    a = await campaign_with(journal, "a", range(5))
    b = await campaign_with(journal, "b", range(100, 105))
    await journal.import_rows(a, [row(i) for i in range(5, 10)], dedupe=True)
    claim_a = await journal.claim(a, "me", 10, LEASE, None)
    claim_b = await journal.claim(b, "me", 10, LEASE, None)
    assert [r.phone for r in claim_a.rows] == [f"7911{i:07d}" for i in range(10)]
    assert [r.phone for r in claim_b.rows] == [f"7911{i:07d}" for i in range(100, 105)]
    sent = await journal.begin_send(a, "me", [(r.id, claim_a.epoch) for r in claim_a.rows], "x")
    assert len(sent) == 10
    assert (await journal.counts(b))["claimed"] == 5
    assert [r.state.value for r in await journal.rows(b)] == ["claimed"] * 5


async def test_a_heartbeat_keeps_a_claim_alive_past_its_first_lease(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(2))
    claim = await journal.claim(campaign, "me", 2, 0.3, None)
    await journal.heartbeat(campaign, "me", LEASE)
    await anyio.sleep(0.4)
    # Another owner finds nothing to claim: the lease was extended.
    assert (await journal.claim(campaign, "other", 2, LEASE, None)).rows == []
    changed = await journal.begin_send(
        campaign, "me", [(r.id, claim.epoch) for r in claim.rows], "a"
    )
    assert changed == {r.id for r in claim.rows}


async def test_a_claim_counts_the_parts_other_live_claims_hold_against_the_budget(
    journal: Journal,
) -> None:
    info = await journal.create_campaign("c", {})
    await journal.import_rows(info.id, [row(i, parts=2) for i in range(10)], dedupe=True)
    held = await journal.claim(
        info.id,
        "one",
        3,
        LEASE,
        None,
    )
    await journal.begin_send(info.id, "one", [(held.rows[0].id, held.epoch)], "a")
    # 10 parts: 6 held by the first owner (2 of them sending), room for 2 rows more.
    second = await journal.claim(info.id, "two", 5, LEASE, 10)
    assert (len(second.rows), second.budget_exhausted) == (2, True)


async def test_a_row_requeued_while_a_claim_lives_is_claimed_once_afterwards(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(6))
    first = await journal.claim(campaign, "me", 3, LEASE, None)
    packet = [(r.id, first.epoch) for r in first.rows[:2]]
    await journal.begin_send(campaign, "me", packet, "a1")
    await journal.finish(campaign, "a1", [unknown(packet[0][0]), unknown(packet[1][0])])
    second = await journal.claim(campaign, "me", 2, LEASE, None)
    assert await journal.requeue(campaign, "unknown") == 2
    # Both live claims end; everything not sent is claimable again, each row once.
    await journal.release(campaign, "me")
    again = await journal.claim(campaign, "other", 10, LEASE, None)
    ids = [r.id for r in again.rows]
    assert sorted(ids) == sorted(set(ids))
    expected = {packet[0][0], packet[1][0], first.rows[2].id}
    expected |= {r.id for r in second.rows} | {6}
    assert set(ids) == expected
    assert (await journal.counts(campaign))["claimed"] == len(expected)


async def test_rows_a_lapsed_claim_never_sent_are_claimed_again_while_its_packet_is_out(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(6))
    dead = await journal.claim(campaign, "dead", 4, 0.2, None)
    on_the_wire = [(r.id, dead.epoch) for r in dead.rows[:2]]
    assert len(await journal.begin_send(campaign, "dead", on_the_wire, "a")) == 2
    await anyio.sleep(0.3)
    # The dead worker's packet never settles; its two unsent rows are free again.
    again = await journal.claim(campaign, "alive", 10, LEASE, None)
    assert [r.id for r in again.rows] == [r.id for r in dead.rows[2:]] + [5, 6]
    counts = await journal.counts(campaign)
    assert (counts["claimed"], counts["sending"], counts["pending"]) == (4, 2, 0)


async def test_released_rows_do_not_count_against_the_budget(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(10))
    first = await journal.claim(campaign, "one", 4, LEASE, None)
    await journal.begin_send(campaign, "one", [(r.id, first.epoch) for r in first.rows[:2]], "a")
    assert await journal.release(campaign, "one") == 2
    # Budget 6 parts, 2 of them on the wire: room for four more rows of one part.
    second = await journal.claim(campaign, "two", 10, LEASE, 6)
    assert (len(second.rows), second.budget_exhausted) == (4, True)


async def test_a_claim_goes_past_a_page_of_stop_listed_rows(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(8))
    await journal.stoplist_add([(f"7911{i:07d}", "asked") for i in range(4)])
    claim = await journal.claim(campaign, "me", 4, LEASE, None)
    assert [r.phone for r in claim.rows] == [f"7911{i:07d}" for i in range(4, 8)]
    assert (await journal.counts(campaign))["skipped"] == 4


async def test_sending_rows_page_on_past_a_partly_settled_packet(journal: Journal) -> None:
    campaign = await campaign_with(journal, "c", range(6))
    claim = await journal.claim(campaign, "me", 6, LEASE, None)
    rows = [(r.id, claim.epoch) for r in claim.rows]
    await journal.begin_send(campaign, "me", rows[:3], "a1")
    await journal.begin_send(campaign, "me", rows[3:], "a2")
    settled = Outcome(rows[0][0], "accepted", "m", 1, None, None, None, None, "queued")
    await journal.finish(campaign, "a1", [settled])
    page = await journal.rows(campaign, state="sending", limit=3)
    assert [r.id for r in page] == [row_id for row_id, _ in rows[1:4]]


async def test_a_late_outcome_after_recovery_and_requeue_settles_nothing_else(
    tmp_path: Path,
) -> None:
    async with SqliteJournal(tmp_path / "j.db") as journal:
        campaign = await campaign_with(journal, "c", range(3))
        claim = await journal.claim(campaign, "gone", 3, LEASE, None)
        rows = [(r.id, claim.epoch) for r in claim.rows]
        await journal.begin_send(campaign, "gone", rows, "old")
        # A new run finds the packet lost, and the user requeues its unknown rows.
        assert await journal.recover(campaign) == (3, 0)
        assert await journal.requeue(campaign, "unknown") == 3
        # The old packet's outcome arrives after all: its rows are no longer its own.
        late = [
            Outcome(i, "accepted", f"m{i}", 1, None, None, None, None, "queued") for i, _ in rows
        ]
        assert await journal.finish(campaign, "old", late) == 0
        counts = await journal.counts(campaign)
        again = await journal.claim(campaign, "new", 3, LEASE, None)
    assert counts == {**counts, "pending": 3, "sending": 0, "accepted": 0}
    assert [r.id for r in again.rows] == [i for i, _ in rows]


async def test_a_row_a_claim_sent_and_that_was_requeued_shows_pending_not_claimed(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(4))
    claim = await journal.claim(campaign, "me", 4, LEASE, None)
    first = claim.rows[0].id
    await journal.begin_send(campaign, "me", [(first, claim.epoch)], "a1")
    await journal.finish(campaign, "a1", [unknown(first)])
    assert await journal.requeue(campaign, "unknown") == 1
    # The claim lives on with its three unsent rows; the requeued row is no longer its.
    shown = {r.id: r.state.value for r in await journal.rows(campaign)}
    assert shown[first] == "pending"
    assert [r.id for r in await journal.rows(campaign, state="pending")] == [first]
    assert sorted(r.id for r in await journal.rows(campaign, state="claimed")) == sorted(
        r.id for r in claim.rows[1:]
    )
    counts = await journal.counts(campaign)
    assert (counts["pending"], counts["claimed"]) == (1, 3)


async def test_a_packet_naming_a_row_twice_takes_it_once_and_the_claim_keeps_its_other_rows(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(2))
    claim = await journal.claim(campaign, "me", 2, LEASE, None)
    a, b = (r.id for r in claim.rows)
    assert await journal.begin_send(campaign, "me", [(a, claim.epoch), (a, claim.epoch)], "p") == {
        a
    }
    assert (await journal.counts(campaign))["claimed"] == 1
    await journal.release(campaign, "me")
    # The row the packet did not take is claimable again, once.
    again = await journal.claim(campaign, "other", 10, LEASE, None)
    assert [r.id for r in again.rows] == [b]


async def test_a_packet_settled_in_two_calls_leaves_alone_a_row_requeued_and_sent_again_between(
    journal: Journal,
) -> None:
    campaign = await campaign_with(journal, "c", range(2))
    first = await journal.claim(campaign, "A", 2, LEASE, None)
    a, b = (r.id for r in first.rows)
    await journal.begin_send(campaign, "A", [(a, first.epoch), (b, first.epoch)], "P")
    await journal.finish(campaign, "P", [unknown(a)])  # P settles a only, for now
    assert await journal.requeue(campaign, "unknown") == 1
    second = await journal.claim(campaign, "B", 1, LEASE, None)
    assert [r.id for r in second.rows] == [a]
    await journal.begin_send(campaign, "B", [(a, second.epoch)], "Q")
    # P's second call carries a's outcome again: a is Q's now, so only b settles under P.
    late_a = Outcome(a, "rejected", None, 1, None, "RecipientError", 7, "no", None)
    accepted_b = Outcome(b, "accepted", "m-b", 1, None, None, None, None, "queued")
    assert await journal.finish(campaign, "P", [late_a, accepted_b]) == 1
    accepted_a = Outcome(a, "accepted", "m-a", 1, None, None, None, None, "queued")
    assert await journal.finish(campaign, "Q", [accepted_a]) == 1
    shown = {r.id: (r.state.value, r.message_id) for r in await journal.rows(campaign)}
    assert shown == {a: ("accepted", "m-a"), b: ("accepted", "m-b")}
    counts = await journal.counts(campaign)
    assert (counts["accepted"], counts["sending"], counts["rejected"]) == (2, 0, 0)
