"""How rows move through the SQLite journal: claimed, sent, settled, released, recovered.

Plain functions of a connection, each one transaction; ``SqliteJournal`` runs them off
the event loop. A row stays ``pending`` in ``aiosms_messages`` until it is settled:

- A claim is a record in ``aiosms_claims``: owner, epoch, lease, the id range it took,
  how many of its rows are not yet sent and their parts. Its rows not yet sent count as
  claimed while it lives; it ends when they are all sent, released or expired.
- ``begin_send`` writes one record per packet in ``aiosms_attempts`` (attempt id,
  owner, epoch, the row ids, how many are not settled yet and their parts), fenced on
  the claim and committed before the request leaves: those rows are sending.
- ``finish`` settles each row once, with the number of its packet record (``packet``).

A new claim takes pending rows outside every live claim's range and every live
packet's rows, and its range overlaps none of them, so a pending row is held by at most
one claim or packet and nothing on the wire is claimed again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiosms.campaigns._models import CampaignInfo, Claim, ClaimedRow, Outcome
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info
from aiosms.campaigns._sqlite_schema import (
    Transaction,
    chunks,
    log_event,
    marks,
    set_campaign_state,
    tally,
)

__all__ = [
    "begin_send",
    "claim",
    "finish",
    "heartbeat",
    "live_attempts",
    "live_claims",
    "recover",
    "release",
    "requeue",
    "stoplist_add",
]

logger = logging.getLogger("aiosms.campaigns")

_CANDIDATES = (
    # The stop list is looked up in the same pass (one probe of its key per row): a
    # number added since import is caught here.
    "SELECT m.id, m.phone, m.text, m.sender, m.at, m.ttl, m.parts, s.phone IS NOT NULL "
    "FROM aiosms_messages AS m LEFT JOIN aiosms_stoplist AS s ON s.phone = m.phone "
    "WHERE m.campaign = ? AND m.state = 'pending' AND m.id > ? AND m.id < ? "
    "ORDER BY m.id LIMIT ?"
)
_NO_END = 2**63 - 1
_new_tuple = tuple.__new__


def live_claims(db: sqlite3.Connection, campaign: int) -> list[tuple[int, int, str, int, int]]:
    """The campaign's claims as ``(first id, last id, owner, epoch, rows not yet sent)``,
    by first id."""
    rows: list[tuple[int, int, str, int, int]] = db.execute(
        "SELECT first_id, last_id, owner, epoch, remaining FROM aiosms_claims "
        "WHERE campaign = ? ORDER BY first_id",
        (campaign,),
    ).fetchall()
    return rows


def live_attempts(
    db: sqlite3.Connection, campaign: int, epoch: int | None = None
) -> list[tuple[int, str, int, str, list[int], float]]:
    """Packets with rows not settled yet, optionally of one claim: ``(record number,
    attempt, epoch, owner, row ids, started at)``."""
    query = (
        "SELECT id, attempt, epoch, owner, ids, started_at FROM aiosms_attempts "
        "WHERE campaign = ? AND unsettled > 0"
    )
    params: tuple[Any, ...] = (campaign,)
    if epoch is not None:
        query += " AND epoch = ?"
        params += (epoch,)
    return [(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in db.execute(query, params)]


def _release_claims(
    db: sqlite3.Connection, campaign: int, where: str, params: Sequence[Any]
) -> int:
    """End the claims ``where`` holds: their rows not yet sent are pending again
    (provably unsent; the packets already recorded go on). Returns how many rows."""
    condition = f"campaign = ? AND {where}"
    (rows,) = db.execute(
        f"SELECT COALESCE(SUM(remaining), 0) FROM aiosms_claims WHERE {condition}",
        (campaign, *params),
    ).fetchone()
    db.execute(f"DELETE FROM aiosms_claims WHERE {condition}", (campaign, *params))
    tally(db, campaign, {"claimed": -rows, "pending": rows})
    return int(rows)


def _held(db: sqlite3.Connection, campaign: int) -> list[tuple[int, int]]:
    """Id intervals no new claim may touch: live claims' ranges and live packets' rows
    (as runs of consecutive ids), sorted."""
    held = [(first, last) for first, last, *_ in live_claims(db, campaign)]
    for record in live_attempts(db, campaign):
        held += _runs(record[4])
    held.sort()
    return held


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ``ids`` as intervals of consecutive ids."""
    runs: list[tuple[int, int]] = []
    start = previous = ids[0]
    for i in ids[1:]:
        if i != previous + 1:
            runs.append((start, previous))
            start = i
        previous = i
    runs.append((start, previous))
    return runs


def claim(
    db: sqlite3.Connection, campaign: int, owner: str, limit: int, lease: float, budget: int | None
) -> Claim:
    """Claim up to ``limit`` pending rows for ``owner`` (see ``Journal.claim``)."""
    now = time.time()
    with Transaction(db):
        # Rows whose worker let the lease lapse are provably unsent: back in line.
        _release_claims(db, campaign, "lease_until < ?", (now,))
        candidates: list[tuple[Any, ...]] = []
        while not candidates:
            found = _candidates(db, campaign, limit)
            if not found:
                return Claim(0, [])
            # A page of stop-listed rows only: skipped now, so look again further on.
            candidates = _skip_stop_listed(db, campaign, found, now)
        exhausted = False
        if budget is not None:
            candidates, exhausted = _within_budget(db, campaign, candidates, budget)
        if not candidates:
            return Claim(0, [], exhausted)
        db.execute("UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = ?", (campaign,))
        (epoch,) = db.execute(
            "SELECT epoch FROM aiosms_campaigns WHERE id = ?", (campaign,)
        ).fetchone()
        db.execute(
            "INSERT INTO aiosms_claims (campaign, epoch, owner, lease_until, first_id, "
            "last_id, remaining, parts, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (campaign, epoch, owner, now + lease, candidates[0][0], candidates[-1][0],
             len(candidates), sum(c[6] for c in candidates), now),
        )  # fmt: skip
        tally(db, campaign, {"pending": -len(candidates), "claimed": len(candidates)})
    # tuple.__new__: a NamedTuple's own constructor costs a Python call per row.
    return Claim(epoch, [_new_tuple(ClaimedRow, c[:6]) for c in candidates], exhausted)


def _candidates(db: sqlite3.Connection, campaign: int, limit: int) -> list[tuple[Any, ...]]:
    """The first ``limit`` pending rows outside every held interval, all below the next
    one: the new claim's range overlaps no live claim and no live packet."""
    after = 0
    for first, last in _held(db, campaign):
        if first > after + 1:
            found: list[tuple[Any, ...]] = db.execute(
                _CANDIDATES, (campaign, after, first, limit)
            ).fetchall()
            if found:
                return found
        after = max(after, last)
    rows: list[tuple[Any, ...]] = db.execute(
        _CANDIDATES, (campaign, after, _NO_END, limit)
    ).fetchall()
    return rows


def _skip_stop_listed(
    db: sqlite3.Connection, campaign: int, candidates: list[tuple[Any, ...]], now: float
) -> list[tuple[Any, ...]]:
    """Candidates whose number is on the stop list become ``skipped``; the rest."""
    stopped = [(now, c[0]) for c in candidates if c[7]]
    if not stopped:
        return candidates
    db.executemany(
        "UPDATE aiosms_messages SET state = 'skipped', reason = 'stop-listed', "
        "settled_at = ? WHERE id = ?",
        stopped,
    )
    tally(db, campaign, {"pending": -len(stopped), "skipped": len(stopped)})
    return [c for c in candidates if not c[7]]


def _within_budget(
    db: sqlite3.Connection, campaign: int, candidates: list[tuple[Any, ...]], budget: int
) -> tuple[list[tuple[Any, ...]], bool]:
    """The head of ``candidates`` whose parts fit the budget, and whether it cut any."""
    (spent,) = db.execute(
        "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages WHERE "
        "+campaign = ? AND state IN ('sending', 'accepted', 'unknown')",
        (campaign,),
    ).fetchone()
    # Claimed and sending rows: their records keep their parts.
    (held,) = db.execute(
        "SELECT (SELECT COALESCE(SUM(parts), 0) FROM aiosms_claims WHERE campaign = ?1) + "
        "(SELECT COALESCE(SUM(parts), 0) FROM aiosms_attempts WHERE campaign = ?1 "
        "AND unsettled > 0)",
        (campaign,),
    ).fetchone()
    room = budget - spent - held
    fitting: list[tuple[Any, ...]] = []
    for candidate in candidates:
        if candidate[6] > room:
            return fitting, True
        room -= candidate[6]
        fitting.append(candidate)
    return fitting, False


def begin_send(
    db: sqlite3.Connection,
    campaign: int,
    owner: str,
    rows: Sequence[tuple[int, int]],
    attempt: str,
) -> set[int]:
    """Record a packet as sending, fenced (see ``Journal.begin_send``)."""
    now = time.time()
    by_epoch: dict[int, list[int]] = {}
    for row_id, epoch in rows:
        by_epoch.setdefault(epoch, []).append(row_id)
    changed: set[int] = set()
    with Transaction(db):
        for epoch, ids in by_epoch.items():
            # The fence: the claim is still this owner's and its lease holds. Claimed
            # again (a new epoch), expired or released, it is gone or has nothing left.
            held = db.execute(
                "SELECT first_id, last_id FROM aiosms_claims WHERE campaign = ? AND epoch = ? "
                "AND owner = ? AND lease_until >= ? AND remaining > 0",
                (campaign, epoch, owner, now),
            ).fetchone()
            if held is not None:
                changed |= _record_packet(db, campaign, owner, epoch, attempt, now, held, ids)
    return changed


def _record_packet(
    db: sqlite3.Connection,
    campaign: int,
    owner: str,
    epoch: int,
    attempt: str,
    now: float,
    held: tuple[int, int],
    ids: list[int],
) -> set[int]:
    """One claim's share of a packet: its rows still pending and in no live packet
    become this packet's; the ids it took."""
    wanted = {i for i in ids if held[0] <= i <= held[1]}
    for record in live_attempts(db, campaign, epoch):
        wanted.difference_update(record[4])
    if not wanted:
        return set()
    # Only rows still pending: not skipped as stop-listed when claimed, not settled.
    ordered = sorted(wanted)
    found: list[tuple[int, int]] = []
    select = "SELECT id, parts FROM aiosms_messages WHERE +campaign = ? AND state = 'pending' AND "
    if ordered[-1] - ordered[0] + 1 == len(ordered):
        # A packet of consecutive rows (the usual case): a range, not a list.
        found += db.execute(select + "id BETWEEN ? AND ?", (campaign, ordered[0], ordered[-1]))
    else:
        for chunk in chunks(ordered):
            found += db.execute(select + f"id IN ({marks(len(chunk))})", (campaign, *chunk))
    if not found:
        return set()
    taken = [row_id for row_id, _ in found]
    parts = sum(p for _, p in found)
    db.execute(
        "INSERT INTO aiosms_attempts (campaign, attempt, epoch, owner, ids, unsettled, parts, "
        "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (campaign, attempt, epoch, owner, json.dumps(taken), len(taken), parts, now),
    )
    db.execute(
        "UPDATE aiosms_claims SET remaining = remaining - ?, parts = parts - ? "
        "WHERE campaign = ? AND epoch = ?",
        (len(taken), parts, campaign, epoch),
    )
    # A claim whose rows are all on their way ends: the packets now hold them.
    db.execute(
        "DELETE FROM aiosms_claims WHERE campaign = ? AND epoch = ? AND remaining <= 0",
        (campaign, epoch),
    )
    tally(db, campaign, {"claimed": -len(taken), "sending": len(taken)})
    return set(taken)


# Numbered parameters: ?1 the row, ?2 its packet record (set, and matched on a late
# outcome), ?3 the time; the rest what the receipt said.
_ACCEPT = (
    "UPDATE aiosms_messages SET state = 'accepted', packet = ?2, settled_at = ?3, "
    "message_id = ?4, parts = COALESCE(?5, parts), cost = ?6, delivery = ?7 WHERE id = ?1 AND "
)
_SETTLE = (
    "UPDATE aiosms_messages SET state = ?8, packet = ?2, settled_at = ?3, message_id = ?4, "
    "parts = COALESCE(?5, parts), cost = ?6, delivery = ?7, error_class = ?9, "
    "error_code = ?10, error_text = ?11, reason = ?12 WHERE id = ?1 AND "
)
_SOURCES = ("pending", "unknown")
_LATE_ONLY = ("unknown",)
_FROM = {
    "pending": "state = 'pending'",
    # A late outcome: the row was marked unknown while its packet was on the wire.
    "unknown": "state = 'unknown' AND packet = ?2",
}


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
            # A packet recovery gave up on settles only the rows it marked unknown (a late
            # outcome): its other rows may have been requeued and be someone else's now.
            sources = _SOURCES if unsettled > 0 else _LATE_ONLY
            moved = _settle_packet(db, campaign, packet, now, _of_packet(outcomes, ids), sources)
            db.execute(
                "UPDATE aiosms_attempts SET unsettled = unsettled - ? WHERE id = ?",
                (moved["pending"], packet),
            )
            settled += moved["pending"] + moved["unknown"]
        if stop_list:
            stoplist_add(db, stop_list, now)
        if pause is not None:
            set_campaign_state(db, campaign, "paused", pause)
    return settled


def _of_packet(outcomes: Sequence[Outcome], ids: str) -> Sequence[Outcome]:
    """The outcomes of the rows a packet record lists (``ids``, JSON): only those may
    settle under it."""
    listed = json.loads(ids)
    if [o.id for o in outcomes] == listed:
        # The usual case: the outcomes of exactly the packet's rows, in its order.
        return outcomes
    mine = set(listed)
    return [o for o in outcomes if o.id in mine]


def _settle_packet(
    db: sqlite3.Connection,
    campaign: int,
    packet: int,
    now: float,
    outcomes: Sequence[Outcome],
    sources: tuple[str, ...],
) -> dict[str, int]:
    """Settle one packet record's rows from ``sources``; how many came from sending
    (``pending`` in the table) and from ``unknown`` (late outcomes)."""
    accepted: list[tuple[Any, ...]] = []
    others: dict[str, list[tuple[Any, ...]]] = {}
    for o in outcomes:
        if o.state == "accepted":
            # Accepted rows, the bulk, bind only what they carry.
            accepted.append((o.id, packet, now, o.message_id, o.parts, o.cost, o.delivery))
        else:
            others.setdefault(o.state, []).append(
                (
                    o.id, packet, now, o.message_id, o.parts, o.cost, o.delivery, o.state,
                    o.error_class, o.error_code, o.error_text, o.reason,
                )
            )  # fmt: skip
    moved = {"pending": 0, "unknown": 0}
    if accepted:
        _settle(db, campaign, _ACCEPT, "accepted", accepted, sources, moved)
    for state, values in others.items():
        _settle(db, campaign, _SETTLE, state, values, sources, moved)
    return moved


def _settle(
    db: sqlite3.Connection,
    campaign: int,
    update: str,
    state: str,
    values: Sequence[Any],
    sources: tuple[str, ...],
    moved: dict[str, int],
) -> None:
    """Settle rows in ``state`` from ``sources`` (sending, and for a late outcome
    ``unknown``); counted in ``moved`` by where they came from.

    The second pass only if the first left some. Unknown rows are looked for first when
    they are to become unknown again, so that no row is matched twice.
    """
    if state == "unknown":
        sources = tuple(reversed(sources))
    settled = 0
    for source in sources:
        before = db.total_changes
        db.executemany(update + _FROM[source], values)
        count = db.total_changes - before
        moved[source] += count
        counted_as = "sending" if source == "pending" else source
        if counted_as != state:
            tally(db, campaign, {counted_as: -count, state: count})
        settled += count
        if settled == len(values):
            break


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
        released = _release_claims(db, campaign, "owner = ?", (owner,))
        db.execute("DELETE FROM aiosms_workers WHERE owner = ?", (owner,))
    return released


_LOST = (
    "UPDATE aiosms_messages SET state = 'unknown', reason = 'worker lost', "
    "error_class = 'WorkerLost', error_text = 'the worker stopped while the message was "
    "being sent: it may have gone out', settled_at = ?"
)


def recover(db: sqlite3.Connection, campaign: int) -> tuple[int, int]:
    """At start-up every earlier worker is gone: its packets' unsettled rows become
    unknown (worker lost) and its claims end. Returns (lost, released)."""
    now = time.time()
    with Transaction(db):
        lost = 0
        for packet, *_, ids, _ in live_attempts(db, campaign):
            for chunk in chunks(ids):
                lost += db.execute(
                    f"{_LOST}, packet = ? WHERE +campaign = ? AND state = 'pending' "
                    f"AND id IN ({marks(len(chunk))})",
                    (now, packet, campaign, *chunk),
                ).rowcount
            db.execute("UPDATE aiosms_attempts SET unsettled = 0 WHERE id = ?", (packet,))
        # Rows an older schema marked sending in the row itself. In no index: one pass
        # over the table, once per run.
        lost += db.execute(
            f"{_LOST} WHERE +campaign = ? AND state = 'sending'", (now, campaign)
        ).rowcount
        tally(db, campaign, {"sending": -lost, "unknown": lost})
        released = _release_claims(db, campaign, "1", ())
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
    """Settled rows in ``state`` (optionally with ``reason``) back to ``pending``, logged."""
    if state not in ("accepted", "rejected", "unknown", "skipped"):
        raise ValueError(f"rows {state!r} cannot be requeued")
    query = (
        "UPDATE aiosms_messages SET state = 'pending', attempt = NULL, owner = NULL, "
        "lease_until = NULL, message_id = NULL, error_class = NULL, error_code = NULL, "
        "error_text = NULL, cost = NULL, delivery = NULL, reason = NULL, packet = NULL, "
        # In no index: a pass over the table, in id order.
        f"sent_at = NULL, settled_at = NULL WHERE +campaign = ? AND state = '{state}'"
    )
    params: list[Any] = [campaign]
    if reason is not None:
        query += " AND reason = ?"
        params.append(reason)
    with Transaction(db):
        count: int = db.execute(query, params).rowcount
        tally(db, campaign, {state: -count, "pending": count})
        log_event(db, campaign, "requeue", f"{count} {state} → pending")
    return count
