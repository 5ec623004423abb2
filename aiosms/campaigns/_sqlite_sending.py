"""How rows move through the SQLite journal: claimed, sent, settled, released, recovered.

Plain functions of a connection, each one transaction; ``SqliteJournal`` runs them off
the event loop. A message row is written once, at import; what becomes of it is
recorded beside it:

- A claim is a record in ``aiosms_claims``: owner, epoch, lease, the ids it took (and
  their parts), how many are not yet sent. It takes rows past the campaign's watermark
  (``claimed_to``, which it then moves) or, first, rows given back to
  ``aiosms_returned`` by an earlier claim or a requeue. It ends when its rows are all
  sent, released or expired; its unsent rows then go back to ``aiosms_returned``.
- ``begin_send`` writes one record per packet in ``aiosms_attempts`` (attempt id, owner,
  epoch, the row ids, how many are not settled yet and their parts), fenced on the claim
  and committed before the request leaves: those rows are sending.
- ``finish`` settles each row once: a packet settled whole keeps its accepted outcomes
  in its own record (one JSON array), made rows of ``aiosms_outcomes`` by
  ``expand_packets`` before anything reads outcomes; every other outcome is a row of
  ``aiosms_outcomes`` at once, with the number of its packet record (``packet``).

A row is in at most one place at a time: past the watermark, in ``aiosms_returned``, in
one live claim's ids, in one live packet, or settled (an outcome). So nothing on the
wire is claimed again, and a claim never sends a row twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from aiosms.campaigns._claim_record import ClaimRecord
from aiosms.campaigns._models import CampaignInfo, Claim, ClaimedRow, Outcome
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info
from aiosms.campaigns._sqlite_schema import (
    SCHEMA_VERSION,
    Transaction,
    chunks,
    expand_packets,
    log_event,
    marks,
    recount,
    set_campaign_state,
    tally,
)

__all__ = [
    "begin_send",
    "claim",
    "finish",
    "given_back",
    "heartbeat",
    "live_attempts",
    "live_claims",
    "recover",
    "release",
    "requeue",
    "stoplist_add",
]

logger = logging.getLogger("aiosms.campaigns")

# The stop list is looked up in the same pass (one probe of its key per row): a number
# added since import is caught here. With the stop list empty, there is nothing to probe.
_COLUMNS = "m.id, m.phone, m.text, m.sender, m.at, m.ttl, m.parts, "
_STOP_LISTED = (
    "s.phone IS NOT NULL FROM {} LEFT JOIN aiosms_stoplist AS s ON s.phone = m.phone ",
    "0 FROM {} ",
)
_FRESH = tuple(
    f"SELECT {_COLUMNS}{probe.format('aiosms_messages AS m')}"
    "WHERE m.campaign = ? AND m.state = 'pending' AND m.id > ? ORDER BY m.id LIMIT ?"
    for probe in _STOP_LISTED
)
_RETURNED = tuple(
    f"SELECT {_COLUMNS}"
    f"{probe.format('aiosms_returned AS r JOIN aiosms_messages AS m ON m.id = r.id')}"
    "WHERE r.campaign = ? ORDER BY r.id LIMIT ?"
    for probe in _STOP_LISTED
)
_new_tuple = tuple.__new__
#: A claim's record with its rows (written once; which were sent changes per packet).
_CLAIMS = (
    "FROM aiosms_claims AS k JOIN aiosms_claim_rows AS r "
    "ON r.campaign = k.campaign AND r.epoch = k.epoch"
)


def live_claims(
    db: sqlite3.Connection, campaign: int
) -> list[tuple[int, int, str, int, int, list[int]]]:
    """The campaign's claims as ``(first id, last id, owner, epoch, rows not yet sent,
    their ids)``, by first id."""
    return [
        (first, last, owner, epoch, remaining, ClaimRecord.read(rows, sent).unsent())
        for first, last, owner, epoch, remaining, rows, sent in db.execute(
            f"SELECT k.first_id, k.last_id, k.owner, k.epoch, k.remaining, r.rows, k.sent "
            f"{_CLAIMS} WHERE k.campaign = ? ORDER BY k.first_id",
            (campaign,),
        )
    ]


def live_attempts(
    db: sqlite3.Connection, campaign: int
) -> list[tuple[int, str, int, str, list[int], float]]:
    """Packets with rows not settled yet: ``(record number, attempt, epoch, owner, row
    ids, started at)``."""
    return [
        (r[0], r[1], r[2], r[3], json.loads(r[4]), r[5])
        for r in db.execute(
            "SELECT id, attempt, epoch, owner, ids, started_at FROM aiosms_attempts "
            "WHERE campaign = ? AND unsettled > 0",
            (campaign,),
        )
    ]


def _end_claims(db: sqlite3.Connection, campaign: int, where: str, params: Sequence[Any]) -> int:
    """End the claims ``where`` holds: their rows not yet sent (provably unsent) go back
    to ``aiosms_returned``; the packets already recorded go on. Returns how many rows."""
    condition = f"campaign = ? AND {where}"
    returned = 0
    for rows, sent, remaining in db.execute(
        f"SELECT r.rows, k.sent, k.remaining {_CLAIMS} WHERE k.campaign = ? AND {where}",
        (campaign, *params),
    ).fetchall():
        if remaining <= 0:
            continue
        db.executemany(
            "INSERT OR IGNORE INTO aiosms_returned (campaign, id) VALUES (?, ?)",
            [(campaign, i) for i in ClaimRecord.read(rows, sent).unsent()],
        )
        returned += remaining
    db.execute(f"UPDATE aiosms_claims SET remaining = 0 WHERE {condition}", (campaign, *params))
    db.execute(f"DELETE FROM aiosms_claims WHERE {condition}", (campaign, *params))
    tally(db, campaign, {"claimed": -returned, "pending": returned})
    return returned


def claim(
    db: sqlite3.Connection, campaign: int, owner: str, limit: int, lease: float, budget: int | None
) -> Claim:
    """Claim up to ``limit`` pending rows for ``owner`` (see ``Journal.claim``)."""
    now = time.time()
    with Transaction(db):
        # Rows whose worker let the lease lapse are provably unsent: back in line.
        _end_claims(db, campaign, "lease_until < ?", (now,))
        room = None if budget is None else budget - _spent(db, campaign)
        taken, exhausted = _take(db, campaign, limit, room, now)
        if not taken:
            return Claim(0, [], exhausted)
        db.execute("UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = ?", (campaign,))
        (epoch,) = db.execute(
            "SELECT epoch FROM aiosms_campaigns WHERE id = ?", (campaign,)
        ).fetchone()
        ids = [c[0] for c in taken]
        parts = [c[6] for c in taken]
        record = ClaimRecord.new(ids, parts)
        db.execute(
            "INSERT INTO aiosms_claims (campaign, epoch, owner, lease_until, first_id, "
            "last_id, remaining, parts, claimed_at, sent, schema) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (campaign, epoch, owner, now + lease, ids[0], ids[-1], len(ids), sum(parts), now,
             record.sent_blob(), SCHEMA_VERSION),
        )  # fmt: skip
        db.execute(
            "INSERT INTO aiosms_claim_rows (campaign, epoch, rows) VALUES (?, ?, ?)",
            (campaign, epoch, record.rows_blob()),
        )
        tally(db, campaign, {"pending": -len(ids), "claimed": len(ids)})
    # tuple.__new__: a NamedTuple's own constructor costs a Python call per row.
    return Claim(epoch, [_new_tuple(ClaimedRow, c[:6]) for c in taken], exhausted)


def _take(
    db: sqlite3.Connection, campaign: int, limit: int, room: int | None, now: float
) -> tuple[list[tuple[Any, ...]], bool]:
    """The rows a new claim takes (rows given back first, then past the watermark), and
    whether the budget cut it short. Rows looked at and passed over are consumed: the
    stop-listed ones are skipped now."""
    taken: list[tuple[Any, ...]] = []
    probe = 0 if db.execute("SELECT 1 FROM aiosms_stoplist LIMIT 1").fetchone() else 1
    while True:
        consumed_any = False
        for from_returned in (True, False):
            want = limit - len(taken)
            if want <= 0:
                break
            found = _found(db, campaign, want, from_returned, probe)
            got, consumed, exhausted = _fit(found, room)
            if room is not None:
                room -= sum(c[6] for c in got)
            _consume(db, campaign, found[:consumed], from_returned, now)
            taken += got
            consumed_any = consumed_any or consumed > 0
            if exhausted:
                return taken, True
        if taken or not consumed_any:
            return taken, False
        # Pages of stop-listed rows only: skipped now, so look again further on.


def _found(
    db: sqlite3.Connection, campaign: int, limit: int, from_returned: bool, probe: int
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` candidates from ``aiosms_returned`` or past the watermark (``probe``:
    0 to look each number up in the stop list, 1 when it is empty)."""
    if from_returned:
        return db.execute(_RETURNED[probe], (campaign, limit)).fetchall()
    (mark,) = db.execute(
        "SELECT claimed_to FROM aiosms_campaigns WHERE id = ?", (campaign,)
    ).fetchone()
    return db.execute(_FRESH[probe], (campaign, mark, limit)).fetchall()


def _consume(
    db: sqlite3.Connection,
    campaign: int,
    consumed: list[tuple[Any, ...]],
    from_returned: bool,
    now: float,
) -> None:
    """The candidates a claim is done with leave where it found them (the stop-listed
    ones settled as skipped, the others now its own)."""
    if not consumed:
        return
    _skip_stop_listed(db, campaign, [c for c in consumed if c[7]], now)
    last = consumed[-1][0]
    if from_returned:
        db.execute("DELETE FROM aiosms_returned WHERE campaign = ? AND id <= ?", (campaign, last))
    else:
        db.execute("UPDATE aiosms_campaigns SET claimed_to = ? WHERE id = ?", (last, campaign))


def _fit(found: list[tuple[Any, ...]], room: int | None) -> tuple[list[tuple[Any, ...]], int, bool]:
    """Walk ``found`` in order: stop-listed rows are passed over, the others taken while
    their parts fit ``room`` (None: no budget). Returns the rows taken, how many of
    ``found`` were consumed, and whether the budget stopped the walk."""
    if room is None:
        return [c for c in found if not c[7]], len(found), False
    taken: list[tuple[Any, ...]] = []
    for consumed, candidate in enumerate(found):
        if candidate[7]:
            continue
        if candidate[6] > room:
            return taken, consumed, True
        room -= candidate[6]
        taken.append(candidate)
    return taken, len(found), False


def _skip_stop_listed(
    db: sqlite3.Connection, campaign: int, stopped: list[tuple[Any, ...]], now: float
) -> None:
    """Rows whose number is on the stop list are settled as ``skipped``."""
    if stopped:
        db.executemany(
            "INSERT INTO aiosms_outcomes (id, campaign, state, reason, settled_at) "
            "VALUES (?, ?, 'skipped', 'stop-listed', ?)",
            [(c[0], campaign, now) for c in stopped],
        )
        tally(db, campaign, {"pending": -len(stopped), "skipped": len(stopped)})


def _spent(db: sqlite3.Connection, campaign: int) -> int:
    """SMS parts sent or maybe sent (accepted, unknown), on the wire, or claimed."""
    (spent,) = db.execute(
        "SELECT COALESCE(SUM(COALESCE(o.parts, (SELECT m.parts FROM aiosms_messages AS m "
        "WHERE m.id = o.id))), 0) FROM aiosms_outcomes AS o WHERE +o.campaign = ? "
        "AND o.state IN ('accepted', 'unknown')",
        (campaign,),
    ).fetchone()
    # Claimed and sending rows, and accepted rows packet records keep: their records
    # keep their parts.
    (held,) = db.execute(
        "SELECT (SELECT COALESCE(SUM(parts), 0) FROM aiosms_claims WHERE campaign = ?1) + "
        "(SELECT COALESCE(SUM(parts), 0) FROM aiosms_attempts WHERE campaign = ?1 "
        "AND unsettled > 0) + (SELECT COALESCE(SUM(accepted_parts), 0) FROM aiosms_attempts "
        "WHERE campaign = ?1 AND accepted IS NOT NULL)",
        (campaign,),
    ).fetchone()
    return int(spent) + int(held)


def begin_send(
    db: sqlite3.Connection,
    campaign: int,
    owner: str,
    rows: Sequence[tuple[int, int]],
    attempt: str,
) -> set[int]:
    """Record a packet as sending, fenced (see ``Journal.begin_send``)."""
    now = time.time()
    epochs = {epoch for _, epoch in rows}
    by_epoch: dict[int, list[int]] = {}
    if len(epochs) == 1:
        # The usual case: a packet of one claim.
        by_epoch[epochs.pop()] = [row_id for row_id, _ in rows]
    else:
        for row_id, epoch in rows:
            by_epoch.setdefault(epoch, []).append(row_id)
    changed: set[int] = set()
    with Transaction(db):
        for epoch, ids in by_epoch.items():
            # The fence: the claim is still this owner's and its lease holds. Claimed
            # again (a new epoch), expired or released, it is gone or has nothing left.
            held = db.execute(
                f"SELECT r.rows, k.sent {_CLAIMS} WHERE k.campaign = ? AND k.epoch = ? "
                "AND k.owner = ? AND k.lease_until >= ? AND k.remaining > 0",
                (campaign, epoch, owner, now),
            ).fetchone()
            if held is not None:
                record = ClaimRecord.read(*held)
                # A claim sends a row once: rows another packet of it took are not taken.
                taken, parts = record.take(sorted(set(ids)))
                if taken:
                    _record_packet(db, campaign, owner, epoch, attempt, now, taken, parts)
                    _claim_sent(db, campaign, epoch, record, len(taken), parts)
                    changed.update(taken)
    return changed


def _record_packet(
    db: sqlite3.Connection,
    campaign: int,
    owner: str,
    epoch: int,
    attempt: str,
    now: float,
    taken: list[int],
    parts: int,
) -> None:
    """One claim's share of a packet: its record, and the rows counted as sending."""
    db.execute(
        "INSERT INTO aiosms_attempts (campaign, attempt, epoch, owner, ids, unsettled, parts, "
        "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (campaign, attempt, epoch, owner, json.dumps(taken), len(taken), parts, now),
    )
    tally(db, campaign, {"claimed": -len(taken), "sending": len(taken)})


def _claim_sent(
    db: sqlite3.Connection, campaign: int, epoch: int, record: ClaimRecord, rows: int, parts: int
) -> None:
    """The claim's record after a packet took ``rows`` of its rows (``parts`` in all)."""
    db.execute(
        "UPDATE aiosms_claims SET remaining = remaining - ?, parts = parts - ?, sent = ? "
        "WHERE campaign = ? AND epoch = ?",
        (rows, parts, record.sent_blob(), campaign, epoch),
    )
    # A claim whose rows are all on their way ends: the packets hold them.
    db.execute(
        "DELETE FROM aiosms_claims WHERE campaign = ? AND epoch = ? AND remaining <= 0",
        (campaign, epoch),
    )


# An outcome's fields in `Outcome` order (?1-?10), then the campaign, the packet record
# and the time.
_INSERT_OUTCOME = (
    "INSERT OR IGNORE INTO aiosms_outcomes (id, state, message_id, parts, cost, error_class, "
    "error_code, error_text, delivery, reason, campaign, packet, settled_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A late outcome: the row was marked unknown while its packet was on the wire.
_LATE_OUTCOME = (
    "UPDATE aiosms_outcomes SET state = ?2, message_id = ?3, parts = ?4, cost = ?5, "
    "error_class = ?6, error_code = ?7, error_text = ?8, delivery = ?9, reason = ?10, "
    "settled_at = ?13 WHERE id = ?1 AND campaign = ?11 AND packet = ?12 AND state = 'unknown'"
)


def finish(
    db: sqlite3.Connection,
    campaign: int,
    attempt: str,
    outcomes: Sequence[Outcome],
    stop_list: Sequence[tuple[str, str]],
    pause: str | None,
) -> int:
    """Settle a packet's rows (see ``Journal.finish``); returns rows settled."""
    now = time.time()
    settled = 0
    with Transaction(db):
        records = db.execute(
            "SELECT id, ids, unsettled FROM aiosms_attempts WHERE campaign = ? AND attempt = ?",
            (campaign, attempt),
        ).fetchall()
        for packet, ids, unsettled in records:
            listed = json.loads(ids)
            mine = _of_packet(outcomes, listed)
            if unsettled == len(listed) == len(mine) == len({o[0] for o in mine}):
                # The usual case: the whole packet settles at once, nothing of it before.
                settled += _settle_packet(db, campaign, packet, now, mine)
                continue
            if unsettled == len(listed):
                # Part of a packet, nothing of it settled yet: every row is new.
                new = _insert_outcomes(db, campaign, packet, now, mine)
                late = 0
            else:
                # Partly settled, or given up by recovery (0): a row that has an outcome
                # takes a late one only if it is unknown under this packet; the others
                # may have been requeued and be someone else's now.
                expand_packets(db, campaign)
                values = [(*o, campaign, packet, now) for o in mine]
                new, late = _settle_rest(db, campaign, packet, now, values, unsettled > 0)
            if new:
                db.execute(
                    "UPDATE aiosms_attempts SET unsettled = unsettled - ? WHERE id = ?",
                    (new, packet),
                )
            settled += new + late
        if stop_list:
            stoplist_add(db, stop_list, now)
        if pause is not None:
            set_campaign_state(db, campaign, "paused", pause)
    return settled


def _of_packet(outcomes: Sequence[Outcome], listed: list[int]) -> Sequence[Outcome]:
    """The outcomes of the rows a packet record lists: only those may settle under it."""
    if [o[0] for o in outcomes] == listed:
        # The usual case: the outcomes of exactly the packet's rows, in its order.
        return outcomes
    mine = set(listed)
    return [o for o in outcomes if o.id in mine]


def _settle_packet(
    db: sqlite3.Connection, campaign: int, packet: int, now: float, outcomes: Sequence[Outcome]
) -> int:
    """Settle every row of a packet none of whose rows is settled yet.

    Its accepted outcomes go into the packet's own record, one JSON array written with
    the record's other changes (``expand_packets`` makes rows of them before anything
    reads outcomes); the others, few, become rows now. Returns the rows settled.
    """
    accepted = [(o[0], o[2], o[3], o[4], o[8]) for o in outcomes if o[1] == "accepted"]
    kept = _kept_totals(accepted)
    if kept is None or any(
        (o[5], o[6], o[7], o[9]) != (None, None, None, None) for o in outcomes if o[1] == "accepted"
    ):
        # Parts the gateway did not give are the row's own (read beside the row), and a
        # record keeps no error or reason: these outcomes are rows now.
        accepted = []
    others = [o for o in outcomes if o[1] != "accepted" or not accepted]
    parts, cost = kept or (None, None)
    db.execute(
        "UPDATE aiosms_attempts SET unsettled = 0, accepted = ?, accepted_parts = ?, "
        "accepted_cost = ?, settled_at = ? WHERE id = ?",
        (json.dumps(accepted) if accepted else None, parts, cost, now, packet),
    )
    tally(db, campaign, {"accepted": len(accepted), "sending": -len(accepted)})
    # After the record: a recount there finds the accepted outcomes it keeps.
    return len(accepted) + (_insert_outcomes(db, campaign, packet, now, others) if others else 0)


def _kept_totals(accepted: list[tuple[Any, ...]]) -> tuple[int, str | None] | None:
    """Parts and cost (a decimal string, None without any) of a packet's accepted
    outcomes, kept with them for ``totals``; None when an outcome lacks its parts."""
    parts = 0
    for entry in accepted:
        if entry[2] is None:
            return None
        parts += entry[2]
    costs = [Decimal(entry[3]) for entry in accepted if entry[3] is not None]
    return parts, str(sum(costs)) if costs else None


def _insert_outcomes(
    db: sqlite3.Connection, campaign: int, packet: int, now: float, outcomes: Sequence[Outcome]
) -> int:
    """Insert outcomes for rows that have none; tallied from sending. Returns how many."""
    before = db.total_changes
    db.executemany(_INSERT_OUTCOME, [(*o, campaign, packet, now) for o in outcomes])
    inserted = db.total_changes - before
    if inserted != len(outcomes):
        # A row of a live packet already had an outcome, which its packet alone could
        # have given it: the counts are taken afresh rather than guessed.
        recount(db, campaign)
        return inserted
    by_state = Counter(o.state for o in outcomes)
    by_state["sending"] = -inserted
    tally(db, campaign, by_state)
    return inserted


def _settle_rest(
    db: sqlite3.Connection,
    campaign: int,
    packet: int,
    now: float,
    values: list[tuple[Any, ...]],
    live: bool,
) -> tuple[int, int]:
    """Settle what a packet partly settled (``live``) or given up by recovery still may:
    rows with no outcome yet (only while ``live``) and rows left unknown under it.
    ``values`` are ``(*outcome, campaign, packet, now)``. Returns (new, late)."""
    having: dict[int, tuple[str, int | None]] = {}
    for chunk in chunks([v[0] for v in values]):
        having.update(
            (i, (state, owner))
            for i, state, owner in db.execute(
                f"SELECT id, state, packet FROM aiosms_outcomes WHERE id IN ({marks(len(chunk))})",
                chunk,
            )
        )
    unsettled = [v for v in values if v[0] not in having] if live else []
    if unsettled:
        # A row settled under this packet, requeued and given to another since is not
        # this packet's any more, though it has no outcome.
        elsewhere = _held_elsewhere(db, campaign, packet, [v[0] for v in unsettled])
        unsettled = [v for v in unsettled if v[0] not in elsewhere]
    fresh = [Outcome(*v[:10]) for v in unsettled]
    late = [v for v in values if having.get(v[0]) == ("unknown", packet)]
    new = _insert_outcomes(db, campaign, packet, now, fresh) if fresh else 0
    moved: Counter[str] = Counter()
    for value in late:
        db.execute(_LATE_OUTCOME, value)
        moved[value[1]] += 1
    moved["unknown"] -= len(late)
    tally(db, campaign, moved)
    return new, len(late)


def _held_elsewhere(db: sqlite3.Connection, campaign: int, packet: int, ids: list[int]) -> set[int]:
    """Which of ``ids`` are given back, unsent in a live claim, or in another live
    packet."""
    held = {i for claim in live_claims(db, campaign) for i in claim[5]}
    held.update(
        i for record in live_attempts(db, campaign) if record[0] != packet for i in record[4]
    )
    held.update(given_back(db, campaign, ids))
    return held.intersection(ids)


def given_back(db: sqlite3.Connection, campaign: int, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` are in ``aiosms_returned`` (given back, waiting for a claim)."""
    found: set[int] = set()
    for chunk in chunks(sorted(ids)):
        found.update(
            i
            for (i,) in db.execute(
                "SELECT id FROM aiosms_returned WHERE campaign = ? "
                f"AND id IN ({marks(len(chunk))})",
                (campaign, *chunk),
            )
        )
    return found


def stoplist_add(db: sqlite3.Connection, entries: Iterable[tuple[str, str]], now: float) -> int:
    """Add ``(phone, reason)`` entries; returns how many were new."""
    before = db.total_changes
    db.executemany(
        "INSERT OR IGNORE INTO aiosms_stoplist (phone, reason, added_at) VALUES (?, ?, ?)",
        [(phone, reason, now) for phone, reason in entries],
    )
    return int(db.total_changes - before)


def release(db: sqlite3.Connection, campaign: int, owner: str) -> int:
    """End ``owner``'s claims and its worker record; returns rows back to pending."""
    with Transaction(db):
        released = _end_claims(db, campaign, "owner = ?", (owner,))
        db.execute("DELETE FROM aiosms_workers WHERE owner = ?", (owner,))
    return released


_LOST = (
    "INSERT OR IGNORE INTO aiosms_outcomes (id, campaign, state, packet, settled_at, reason, "
    "error_class, error_text) VALUES (?, ?, 'unknown', ?, ?, 'worker lost', 'WorkerLost', "
    "'the worker stopped while the message was being sent: it may have gone out')"
)


def recover(db: sqlite3.Connection, campaign: int) -> tuple[int, int]:
    """At start-up every earlier worker is gone: its packets' unsettled rows become
    unknown (worker lost) and its claims end. Returns (lost, released)."""
    now = time.time()
    with Transaction(db):
        expand_packets(db, campaign)
        lost = 0
        for packet, *_, ids, _ in live_attempts(db, campaign):
            before = db.total_changes
            # Rows of the packet already settled keep their outcome.
            db.executemany(_LOST, [(i, campaign, packet, now) for i in ids])
            lost += db.total_changes - before
            db.execute("UPDATE aiosms_attempts SET unsettled = 0 WHERE id = ?", (packet,))
        tally(db, campaign, {"sending": -lost, "unknown": lost})
        released = _end_claims(db, campaign, "1", ())
        if lost or released:
            log_event(
                db, campaign, "recover", f"{lost} sending → unknown, {released} claimed → pending"
            )
    if lost:
        logger.warning(
            "campaign %d: %d message(s) were being sent when their worker stopped: "
            "marked unknown, never resent",
            campaign,
            lost,
        )
    return lost, released


def heartbeat(db: sqlite3.Connection, campaign: int, owner: str, lease: float) -> CampaignInfo:
    """Record that ``owner`` lives, extend its live claims; the campaign as it stands."""
    now = time.time()
    with Transaction(db):
        db.execute(
            "INSERT INTO aiosms_workers (owner, campaign, started_at, heartbeat) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET heartbeat = ?",
            (owner, campaign, now, now, now),
        )
        db.execute(
            "UPDATE aiosms_claims SET lease_until = ? WHERE campaign = ? AND owner = ? "
            "AND lease_until >= ?",
            (now + lease, campaign, owner, now),
        )
        row = db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns WHERE id = ?",
            (campaign,),
        ).fetchone()
    return campaign_info(row)


def requeue(db: sqlite3.Connection, campaign: int, state: str, reason: str | None) -> int:
    """Settled rows in ``state`` (optionally with ``reason``) back to ``pending``, logged.

    Their outcomes are deleted and they join ``aiosms_returned``, where the next claim
    looks first; rows skipped at import become pending in place (given back too when
    they lie below the watermark, past which a claim finds them anyway).
    """
    if state not in ("accepted", "rejected", "unknown", "skipped"):
        raise ValueError(f"rows {state!r} cannot be requeued")
    # In no index: a pass over the outcomes, in id order.
    where = f"+campaign = ? AND state = '{state}'" + ("" if reason is None else " AND reason = ?")
    params: list[Any] = [campaign] if reason is None else [campaign, reason]
    with Transaction(db):
        expand_packets(db, campaign)
        db.execute(
            f"INSERT OR IGNORE INTO aiosms_returned (campaign, id) SELECT campaign, id "
            f"FROM aiosms_outcomes WHERE {where}",
            params,
        )
        # A row an older schema settled in place still carries its old state.
        db.execute(
            "UPDATE aiosms_messages SET state = 'pending', reason = NULL, requeued = requeued + 1, "
            "attempt = NULL, owner = NULL, epoch = NULL, sent_at = NULL, packet = NULL "
            "WHERE state != 'pending' "
            f"AND id IN (SELECT id FROM aiosms_outcomes WHERE {where})",
            params,
        )
        count: int = db.execute(f"DELETE FROM aiosms_outcomes WHERE {where}", params).rowcount
        if state == "skipped":
            count += _requeue_skipped_at_import(db, campaign, where, params)
        tally(db, campaign, {state: -count, "pending": count})
        log_event(db, campaign, "requeue", f"{count} {state} → pending")
    return count


def _requeue_skipped_at_import(
    db: sqlite3.Connection, campaign: int, where: str, params: list[Any]
) -> int:
    """Rows skipped at import (no outcome) back to pending; returns how many."""
    (mark,) = db.execute(
        "SELECT claimed_to FROM aiosms_campaigns WHERE id = ?", (campaign,)
    ).fetchone()
    settled = "NOT EXISTS (SELECT 1 FROM aiosms_outcomes AS o WHERE o.id = aiosms_messages.id)"
    db.execute(
        "INSERT OR IGNORE INTO aiosms_returned (campaign, id) SELECT campaign, id "
        f"FROM aiosms_messages WHERE {where} AND id <= {int(mark)} AND {settled}",
        params,
    )
    count: int = db.execute(
        "UPDATE aiosms_messages SET state = 'pending', reason = NULL, requeued = requeued + 1 "
        f"WHERE {where} AND {settled}",
        params,
    ).rowcount
    return count
