"""A campaign's rows through the PostgreSQL journal's state machine: claimed, turned
``sending`` behind the fence, settled by attempt, requeued.

Claims lock the campaign's row (its epoch) and take pending rows ``FOR UPDATE SKIP
LOCKED``, so workers on many machines claim side by side. ``begin_send`` is the
compare-and-set that decides what may be sent; the session commits it durably
(``synchronous_commit = on``) before the request leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiosms.campaigns._models import Claim, ClaimedRow, Outcome
from aiosms.campaigns._pg._campaigns import set_campaign_state
from aiosms.campaigns._pg._sql import Cursor, one, record_event
from aiosms.campaigns._pg._stoplist import add_to_stoplist
from aiosms.campaigns._pg._workers import reap

__all__ = ["begin_send", "claim", "finish", "requeue"]

#: A pending row as a claim reads it: a ``ClaimedRow``'s fields, then parts and
#: whether its number is stop-listed.
_Candidate = tuple[Any, ...]
_PARTS, _STOPPED = 6, 7


def claim(
    db: Cursor, campaign: int, owner: str, limit: int, lease: float, budget: int | None
) -> Claim:
    """Claim up to ``limit`` pending rows (and rows whose lease expired) for ``owner``
    under a new epoch; stop-listed ones found on the way become ``skipped``."""
    reap(db, campaign, orphans=False)
    # The campaign's row is the claims' lock: one claim at a time per campaign, so
    # the budget is counted once, and a pause set elsewhere is seen here.
    db.execute(
        "UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = %s RETURNING epoch, state",
        (campaign,),
    )
    epoch, state = one(db)
    if state != "active":
        return Claim(0, [])
    db.execute(
        "UPDATE aiosms_messages SET state = 'pending', owner = NULL, lease_until = NULL "
        "WHERE campaign = %s AND state = 'claimed' AND lease_until < now()",
        (campaign,),
    )
    candidates: list[_Candidate] = []
    while not candidates:
        found = _pending(db, campaign, limit)
        if not found:
            return Claim(0, [])
        # A page of stop-listed rows only: skipped now, so look again further on.
        candidates = _skip_stop_listed(db, found)
    exhausted = False
    if budget is not None:
        candidates, exhausted = _within_budget(db, campaign, candidates, budget)
    if not candidates:
        return Claim(0, [], exhausted)
    db.execute(
        "UPDATE aiosms_messages SET state = 'claimed', owner = %s, epoch = %s, "
        "lease_until = now() + %s * interval '1 second', claimed_at = now() "
        "WHERE id = ANY(%s)",
        (owner, epoch, lease, [c[0] for c in candidates]),
    )
    return Claim(epoch, [ClaimedRow(*c[:6]) for c in candidates], exhausted)


def begin_send(
    db: Cursor, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
) -> set[int]:
    """Turn a packet's ``(row id, epoch)`` rows ``sending`` under ``attempt`` where the
    fence holds; the ids it turned (only those may be sent)."""
    by_epoch: dict[int, list[int]] = {}
    for row_id, epoch in rows:
        by_epoch.setdefault(epoch, []).append(row_id)
    changed: set[int] = set()
    for epoch, ids in by_epoch.items():
        # The fence: still this owner's, under this epoch, lease running on the
        # database's clock, and the campaign not paused since the claim.
        db.execute(
            "UPDATE aiosms_messages SET state = 'sending', attempt = %s, "
            "sent_at = now() WHERE campaign = %s AND state = 'claimed' "
            "AND owner = %s AND epoch = %s AND lease_until >= now() AND id = ANY(%s) "
            "AND EXISTS (SELECT 1 FROM aiosms_campaigns AS c WHERE c.id = %s "
            "AND c.state = 'active') RETURNING id",
            (attempt, campaign, owner, epoch, ids, campaign),
        )
        changed.update(i for (i,) in db)
    return changed


def finish(
    db: Cursor,
    campaign: int,
    attempt: str,
    outcomes: Sequence[Outcome],
    stop_list: Sequence[tuple[str, str]],
    pause: str | None,
) -> int:
    """Settle a packet's rows by id and attempt (even those marked ``unknown``
    meanwhile: a late outcome wins), add to the stop list, pause; rows settled."""
    accepted = [o for o in outcomes if o.state == "accepted"]
    others = [o for o in outcomes if o.state != "accepted"]
    settled = _settle_accepted(db, attempt, accepted) if accepted else 0
    if others:
        settled += _settle_others(db, attempt, others)
    if stop_list:
        add_to_stoplist(db, stop_list)
    if pause is not None:
        set_campaign_state(db, campaign, "paused", pause)
    return settled


def requeue(db: Cursor, campaign: int, state: str, reason: str | None) -> int:
    """Rows in ``state`` (only those with ``reason``, if given) back to ``pending``,
    logged; how many."""
    query = (
        "UPDATE aiosms_messages SET state = 'pending', attempt = NULL, owner = NULL, "
        "lease_until = NULL, message_id = NULL, error_class = NULL, error_code = NULL, "
        "error_text = NULL, cost = NULL, delivery = NULL, reason = NULL, "
        "sent_at = NULL, settled_at = NULL WHERE campaign = %s AND state = %s"
    )
    params: list[Any] = [campaign, state]
    if reason is not None:
        query += " AND reason = %s"
        params.append(reason)
    db.execute(query, params)
    count = db.rowcount
    record_event(db, campaign, "requeue", f"{count} {state} → pending")
    return count


def _pending(db: Cursor, campaign: int, limit: int) -> list[_Candidate]:
    db.execute(
        "SELECT m.id, m.phone, m.text, m.sender, m.at, m.ttl, m.parts, "
        "s.phone IS NOT NULL FROM aiosms_messages AS m "
        "LEFT JOIN aiosms_stoplist AS s ON s.phone = m.phone "
        "WHERE m.campaign = %s AND m.state = 'pending' ORDER BY m.id LIMIT %s "
        "FOR UPDATE OF m SKIP LOCKED",
        (campaign, limit),
    )
    return db.fetchall()


def _skip_stop_listed(db: Cursor, candidates: list[_Candidate]) -> list[_Candidate]:
    """The candidates whose number is not stop-listed; the others become ``skipped``."""
    stopped = [c[0] for c in candidates if c[_STOPPED]]
    if not stopped:
        return candidates
    db.execute(
        "UPDATE aiosms_messages SET state = 'skipped', reason = 'stop-listed', "
        "settled_at = now() WHERE id = ANY(%s)",
        (stopped,),
    )
    return [c for c in candidates if not c[_STOPPED]]


def _within_budget(
    db: Cursor, campaign: int, candidates: list[_Candidate], budget: int
) -> tuple[list[_Candidate], bool]:
    """The candidates, in order, while the campaign's parts claimed, sending, accepted
    or unknown stay within ``budget``; and whether a row was left out for it."""
    db.execute(
        "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages WHERE campaign = %s "
        "AND state IN ('claimed', 'sending', 'accepted', 'unknown')",
        (campaign,),
    )
    room = budget - int(one(db)[0])
    for taken, candidate in enumerate(candidates):
        if candidate[_PARTS] > room:
            return candidates[:taken], True
        room -= candidate[_PARTS]
    return candidates, False


def _settle_accepted(db: Cursor, attempt: str, accepted: Sequence[Outcome]) -> int:
    # One statement for the packet's accepted rows: a join on unnested arrays.
    db.execute(
        "UPDATE aiosms_messages AS m SET state = 'accepted', "
        "message_id = u.message_id, parts = COALESCE(u.parts, m.parts), "
        "cost = u.cost, delivery = u.delivery, settled_at = now() "
        "FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[], %s::text[]) "
        "AS u(id, message_id, parts, cost, delivery) "
        "WHERE m.id = u.id AND m.attempt = %s AND m.state IN ('sending', 'unknown')",
        (
            [o.id for o in accepted],
            [o.message_id for o in accepted],
            [o.parts for o in accepted],
            [o.cost for o in accepted],
            [o.delivery for o in accepted],
            attempt,
        ),
    )
    return db.rowcount


def _settle_others(db: Cursor, attempt: str, others: Sequence[Outcome]) -> int:
    # Every field of ``Outcome``, unnested in its order.
    db.execute(
        "UPDATE aiosms_messages AS m SET state = u.state, "
        "message_id = u.message_id, parts = COALESCE(u.parts, m.parts), "
        "cost = u.cost, error_class = u.error_class, error_code = u.error_code, "
        "error_text = u.error_text, delivery = u.delivery, reason = u.reason, "
        "settled_at = now() FROM unnest(%s::bigint[], %s::text[], %s::text[], "
        "%s::int[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], "
        "%s::text[]) AS u(id, state, message_id, parts, cost, error_class, "
        "error_code, error_text, delivery, reason) "
        "WHERE m.id = u.id AND m.attempt = %s AND m.state IN ('sending', 'unknown')",
        [*(list(c) for c in zip(*others, strict=True)), attempt],
    )
    return db.rowcount
