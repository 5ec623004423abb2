"""How rows move through the SQLite journal: claimed, sent, settled, released, recovered.

Plain functions of a connection, each one transaction; ``SqliteJournal`` runs them off
the event loop. A claim is a record in ``aiosms_claims`` (owner, epoch, lease, the id
range it took, how many of its rows are not yet sending); its rows stay ``pending`` in
``aiosms_messages`` and count as claimed while the claim lives. Claims never overlap,
so a pending row lies in at most one. ``begin_send`` turns a packet's rows ``sending``
in one fenced update, committed before the request leaves; ``finish`` settles them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiosms.campaigns._models import CampaignInfo, Claim, ClaimedRow, Outcome
from aiosms.campaigns._sqlite_schema import (
    Transaction,
    campaign_info,
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


def live_claims(db: sqlite3.Connection, campaign: int) -> list[tuple[int, int, str, int]]:
    """The campaign's claims as ``(first id, last id, owner, epoch)``, by first id."""
    rows: list[tuple[int, int, str, int]] = db.execute(
        "SELECT first_id, last_id, owner, epoch FROM aiosms_claims WHERE campaign = ? "
        "ORDER BY first_id",
        (campaign,),
    ).fetchall()
    return rows


def _drop_claims(db: sqlite3.Connection, campaign: int, where: str, params: Sequence[Any]) -> int:
    """End the claims ``where`` holds: their rows not yet sending are pending again
    (provably unsent). Returns how many rows that was."""
    condition = f"campaign = ? AND {where}"
    (rows,) = db.execute(
        f"SELECT COALESCE(SUM(remaining), 0) FROM aiosms_claims WHERE {condition}",
        (campaign, *params),
    ).fetchone()
    db.execute(f"DELETE FROM aiosms_claims WHERE {condition}", (campaign, *params))
    tally(db, campaign, {"claimed": -rows, "pending": rows})
    return int(rows)


def claim(
    db: sqlite3.Connection, campaign: int, owner: str, limit: int, lease: float, budget: int | None
) -> Claim:
    """Claim up to ``limit`` pending rows for ``owner`` (see ``Journal.claim``)."""
    now = time.time()
    with Transaction(db):
        # Rows whose worker let the lease lapse are provably unsent: back in line.
        _drop_claims(db, campaign, "lease_until < ?", (now,))
        candidates = _candidates(db, campaign, limit)
        candidates = _skip_stop_listed(db, campaign, candidates, now)
        exhausted = False
        if budget is not None and candidates:
            candidates, exhausted = _within_budget(db, campaign, candidates, budget)
        if not candidates:
            return Claim(0, [], exhausted)
        db.execute("UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = ?", (campaign,))
        (epoch,) = db.execute(
            "SELECT epoch FROM aiosms_campaigns WHERE id = ?", (campaign,)
        ).fetchone()
        db.execute(
            "INSERT INTO aiosms_claims (campaign, epoch, owner, lease_until, first_id, "
            "last_id, remaining, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (campaign, epoch, owner, now + lease, candidates[0][0], candidates[-1][0],
             len(candidates), now),
        )  # fmt: skip
        tally(db, campaign, {"pending": -len(candidates), "claimed": len(candidates)})
    return Claim(epoch, [ClaimedRow(*c[:6]) for c in candidates], exhausted)


def _candidates(db: sqlite3.Connection, campaign: int, limit: int) -> list[tuple[Any, ...]]:
    """The first ``limit`` pending rows outside every live claim, all below the next
    live claim's range: the new claim's range overlaps none."""
    after = 0
    for first, last, _, _ in live_claims(db, campaign):
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
    (held,) = db.execute(
        "SELECT COALESCE(SUM(m.parts), 0) FROM aiosms_claims AS c JOIN aiosms_messages AS m "
        "ON m.id BETWEEN c.first_id AND c.last_id WHERE c.campaign = ? "
        "AND m.campaign = c.campaign AND m.state = 'pending'",
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
    db: sqlite3.Connection, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
) -> set[int]:
    """Turn a packet's rows ``sending``, fenced (see ``Journal.begin_send``)."""
    now = time.time()
    by_epoch: dict[int, list[int]] = {}
    for row_id, epoch in rows:
        by_epoch.setdefault(epoch, []).append(row_id)
    changed: set[int] = set()
    with Transaction(db):
        for epoch, ids in by_epoch.items():
            # The fence: the claim is still this owner's and its lease holds. Claimed
            # again (a new epoch), expired or released, it is gone or someone else's.
            held = db.execute(
                "SELECT first_id, last_id FROM aiosms_claims WHERE campaign = ? AND epoch = ? "
                "AND owner = ? AND lease_until >= ?",
                (campaign, epoch, owner, now),
            ).fetchone()
            if held is None:
                continue
            mine = sorted({i for i in ids if held[0] <= i <= held[1]})
            if mine:
                changed |= _mark_sending(db, campaign, owner, epoch, attempt, now, mine)
    return changed


def _mark_sending(
    db: sqlite3.Connection,
    campaign: int,
    owner: str,
    epoch: int,
    attempt: str,
    now: float,
    ids: list[int],
) -> set[int]:
    """One claim's share of a packet: pending rows ``sending``; the ids it turned."""
    update = (
        "UPDATE aiosms_messages SET state = 'sending', attempt = ?, owner = ?, epoch = ?, "
        # `+campaign`: find the rows by id, not by a walk of the pending index.
        "sent_at = ? WHERE +campaign = ? AND state = 'pending' AND "
    )
    head = (attempt, owner, epoch, now, campaign)
    if ids[-1] - ids[0] + 1 == len(ids):
        # A packet of consecutive rows (the usual case): a range, not a list.
        count = db.execute(update + "id BETWEEN ? AND ?", (*head, ids[0], ids[-1])).rowcount
    else:
        count = 0
        for chunk in chunks(ids):
            count += db.execute(update + f"id IN ({marks(len(chunk))})", (*head, *chunk)).rowcount
    db.execute(
        "UPDATE aiosms_claims SET remaining = remaining - ? WHERE campaign = ? AND epoch = ?",
        (count, campaign, epoch),
    )
    # A claim whose rows are all on their way ends: its range holds nothing more.
    db.execute(
        "DELETE FROM aiosms_claims WHERE campaign = ? AND epoch = ? AND remaining <= 0",
        (campaign, epoch),
    )
    tally(db, campaign, {"claimed": -count, "sending": count})
    if count == len(ids):
        return set(ids)
    changed: set[int] = set()
    for chunk in chunks(ids):
        changed.update(
            i
            for (i,) in db.execute(
                f"SELECT id FROM aiosms_messages WHERE attempt = ? AND id IN ({marks(len(chunk))})",
                (attempt, *chunk),
            )
        )
    return changed


_ACCEPT = (
    "UPDATE aiosms_messages SET state = 'accepted', message_id = ?, "
    "parts = COALESCE(?, parts), cost = ?, delivery = ?, settled_at = ? "
    "WHERE id = ? AND attempt = ? AND state = "
)
_SETTLE = (
    "UPDATE aiosms_messages SET state = ?, message_id = ?, "
    "parts = COALESCE(?, parts), cost = ?, error_class = ?, error_code = ?, "
    "error_text = ?, delivery = ?, reason = ?, settled_at = ? "
    "WHERE id = ? AND attempt = ? AND state = "
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
    accepted: list[tuple[Any, ...]] = []
    others: dict[str, list[tuple[Any, ...]]] = {}
    for o in outcomes:
        if o.state == "accepted":
            # Accepted rows, the bulk, bind only what they carry.
            accepted.append((o.message_id, o.parts, o.cost, o.delivery, now, o.id, attempt))
        else:
            others.setdefault(o.state, []).append(
                (
                    o.state, o.message_id, o.parts, o.cost, o.error_class, o.error_code,
                    o.error_text, o.delivery, o.reason, now, o.id, attempt,
                )
            )  # fmt: skip
    settled = 0
    with Transaction(db):
        if accepted:
            settled += _settle(db, campaign, _ACCEPT, "accepted", accepted)
        for state, values in others.items():
            settled += _settle(db, campaign, _SETTLE, state, values)
        if stop_list:
            stoplist_add(db, stop_list, now)
        if pause is not None:
            set_campaign_state(db, campaign, "paused", pause)
    return settled


def _settle(
    db: sqlite3.Connection, campaign: int, update: str, state: str, values: Sequence[Any]
) -> int:
    """Settle rows ``sending`` (or ``unknown``: a late outcome) in ``state``; counted.

    One pass per state the rows may come from, so that the counts know where they came
    from; the second pass only if the first left some. Unknown rows are looked for first
    when they are to become unknown again, so that no row is matched twice.
    """
    sources = ("unknown", "sending") if state == "unknown" else ("sending", "unknown")
    settled = 0
    for source in sources:
        before = db.total_changes
        db.executemany(f"{update}'{source}'", values)
        moved = db.total_changes - before
        if source != state:
            tally(db, campaign, {source: -moved, state: moved})
        settled += moved
        if settled == len(values):
            break
    return settled


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
        released = _drop_claims(db, campaign, "owner = ?", (owner,))
        db.execute("DELETE FROM aiosms_workers WHERE owner = ?", (owner,))
    return released


def recover(db: sqlite3.Connection, campaign: int) -> tuple[int, int]:
    """At start-up every earlier worker is gone: its sending rows become unknown (worker
    lost) and its claims end. Returns (lost, released)."""
    now = time.time()
    with Transaction(db):
        lost = db.execute(
            "UPDATE aiosms_messages SET state = 'unknown', reason = 'worker lost', "
            "error_class = 'WorkerLost', error_text = 'the worker stopped while "
            "the message was being sent: it may have gone out', settled_at = ? "
            # In no index: one pass over the table, once per run.
            "WHERE +campaign = ? AND state = 'sending'",
            (now, campaign),
        ).rowcount
        tally(db, campaign, {"sending": -lost, "unknown": lost})
        released = _drop_claims(db, campaign, "1", ())
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
            "SELECT id, name, state, reason, settings FROM aiosms_campaigns WHERE id = ?",
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
        "error_text = NULL, cost = NULL, delivery = NULL, reason = NULL, "
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
