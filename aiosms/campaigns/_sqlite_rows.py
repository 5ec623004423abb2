"""Rows in and out of the SQLite journal: import, pages of rows, counts and totals,
delivery states, and the campaigns' list and purge.

Plain functions of a connection; ``SqliteJournal`` runs them off the event loop. A row's
outcome, once it has one, is its own row in ``aiosms_outcomes``; a row without one is
shown as ``sending`` while a live packet lists it, ``claimed`` while a live claim does
(under that claim's owner and epoch), and as the import left it otherwise (see
``_sqlite_sending``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aiosms.campaigns._models import ALL_STATES, ImportResult, NewRow, Row
from aiosms.campaigns._rows import read_row
from aiosms.campaigns._sqlite_schema import (
    Transaction,
    chunks,
    expand_packets,
    json_functions,
    log_event,
    marks,
    recount,
    tally,
)
from aiosms.campaigns._sqlite_sending import given_back, live_attempts, live_claims

__all__ = [
    "counts",
    "import_rows",
    "purge_campaigns",
    "rows",
    "settled_since",
    "totals",
    "tracking_page",
]

_FINAL_DELIVERY = ("delivered", "undelivered", "rejected")


def _stamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


# -- import ------------------------------------------------------------------------------


def import_rows(
    db: sqlite3.Connection, campaign: int, new: Sequence[NewRow], dedupe: bool
) -> ImportResult:
    """Add rows whose key the campaign lacks (see ``Journal.import_rows``)."""
    now = time.time()
    with Transaction(db):
        phones = sorted({r.phone for r in new if r.state == "pending"})
        stopped = _present(db, "SELECT phone FROM aiosms_stoplist WHERE", "phone", (), phones)
        taken = (
            _present(db, "SELECT phone FROM aiosms_messages WHERE campaign = ? AND",
                     "phone", (campaign,), phones)
            if dedupe else set()
        )  # fmt: skip
        # Rows whose key is already there are left alone (INSERT OR IGNORE): importing
        # the same rows again adds nothing and judges nothing.
        known = _present(
            db, "SELECT key FROM aiosms_messages WHERE campaign = ? AND", "key", (campaign,),
            [r.key for r in new],
        )  # fmt: skip
        values = []
        for row in new:
            if row.key in known:
                continue
            known.add(row.key)
            state, reason = _judged(row, stopped, taken if dedupe else None)
            values.append(
                (campaign, row.key, row.phone, row.text, row.sender, row.at, row.ttl,
                 row.parts, state, reason, now)
            )  # fmt: skip
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO aiosms_messages (campaign, key, phone, text, sender, "
            "at, ttl, parts, state, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        added = db.total_changes - before
        if added == len(values):
            tally(db, campaign, Counter(v[8] for v in values))
        else:
            recount(db, campaign)
    return ImportResult(added, sum(v[8] == "skipped" for v in values))


def _judged(row: NewRow, stopped: set[str], taken: set[str] | None) -> tuple[str, str | None]:
    """A new row's state and reason: stop-listed and (with ``taken``) repeated numbers
    are skipped; ``taken`` learns the numbers let through."""
    if row.state != "pending":
        return row.state, row.reason
    if row.phone in stopped:
        return "skipped", "stop-listed"
    if taken is not None:
        if row.phone in taken:
            return "skipped", "duplicate number"
        taken.add(row.phone)
    return row.state, row.reason


def _present(
    db: sqlite3.Connection, select: str, column: str, head: tuple[Any, ...], values: Sequence[str]
) -> set[str]:
    """Which of ``values`` the ``select … WHERE [head AND] column IN (…)`` finds."""
    found: set[str] = set()
    for chunk in chunks(values):
        query = f"{select} {column} IN ({marks(len(chunk))})"
        found.update(value for (value,) in db.execute(query, (*head, *chunk)))
    return found


# -- pages of rows -----------------------------------------------------------------------

# A settled row takes its packet's attempt, owner, epoch and send time from the packet's
# record; a row an older schema settled carries its own.
_ROW_COLUMNS = (
    "m.id, m.key, m.phone, m.text, m.sender, COALESCE(o.parts, m.parts), "
    "COALESCE(o.state, m.state), CASE WHEN o.id IS NULL THEN m.reason ELSE o.reason END, "
    "COALESCE(a.attempt, m.attempt), COALESCE(a.owner, m.owner), COALESCE(a.epoch, m.epoch), "
    "o.message_id, o.error_class, o.error_code, o.error_text, o.cost, o.delivery, "
    "m.created_at, COALESCE(a.started_at, m.sent_at), o.settled_at, o.delivery_at"
)
_JOINS = (
    "LEFT JOIN aiosms_outcomes AS o ON o.id = m.id "
    "LEFT JOIN aiosms_attempts AS a ON a.id = o.packet"
)
_SELECT_ROWS = f"SELECT {_ROW_COLUMNS} FROM aiosms_messages AS m {_JOINS} WHERE +m.campaign = ? "
# Settled rows of one state, through their outcomes (in id order, like the rows).
_SELECT_SETTLED = (
    f"SELECT {_ROW_COLUMNS} FROM aiosms_outcomes AS o JOIN aiosms_messages AS m ON m.id = o.id "
    "LEFT JOIN aiosms_attempts AS a ON a.id = o.packet WHERE +o.campaign = ? "
)
#: A row with no outcome, pending since its import (or a requeue).
_UNSETTLED = "AND o.id IS NULL AND m.state = 'pending' "


def rows(
    db: sqlite3.Connection, campaign: int, state: str | None, after: int, limit: int
) -> list[Row]:
    """A page of rows in id order after ``after``, optionally of one state."""
    if state is not None and state not in ALL_STATES:
        raise ValueError(f"unknown row state {state!r}")
    if state == "sending":
        in_flight = _InFlight(db, campaign)
        found = in_flight.listed(db, campaign, after, limit, in_flight.packets, "sending")
    elif state == "claimed":
        in_flight = _InFlight(db, campaign)
        found = in_flight.listed(db, campaign, after, limit, in_flight.claims, "claimed")
    elif state == "pending":
        found = _pending(db, campaign, after, limit)
    elif state in ("accepted", "rejected", "unknown"):
        found = db.execute(
            f"{_SELECT_SETTLED}AND o.state = '{state}' AND o.id > ? ORDER BY o.id LIMIT ?",
            (campaign, after, limit),
        ).fetchall()
    else:
        # Every state, or skipped (at import or when claimed): by id (`+campaign`), not
        # through an index to be sorted.
        where = "" if state is None else f"AND COALESCE(o.state, m.state) = '{state}' "
        in_flight = _InFlight(db, campaign)
        found = [
            in_flight.shown(r)
            for r in db.execute(
                f"{_SELECT_ROWS}{where}AND m.id > ? ORDER BY m.id LIMIT ?",
                (campaign, after, limit),
            )
        ]
    return [read_row(r, _stamp) for r in found]


class _InFlight:
    """A campaign's live claims and packets, to show a row with no outcome as it stands:
    sending (a live packet record lists it), claimed (a live claim lists it and it is
    not on its way yet) or pending."""

    def __init__(self, db: sqlite3.Connection, campaign: int) -> None:
        self.claims: dict[int, tuple[Any, ...]] = {}
        for claim in live_claims(db, campaign):
            self.claims.update(dict.fromkeys(claim[5], claim))
        self.packets: dict[int, tuple[Any, ...]] = {}
        for packet in live_attempts(db, campaign):
            self.packets.update(dict.fromkeys(packet[4], packet))
        # A live packet lists a row it settled that was requeued since: given back, or
        # in a claim again, the row is no longer that packet's.
        for row_id in given_back(db, campaign, self.packets) | (
            self.claims.keys() & self.packets.keys()
        ):
            del self.packets[row_id]

    def shown(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """``row`` with the state, owner, epoch, attempt and send time a reader sees."""
        if row[6] != "pending":
            return row
        packet = self.packets.get(row[0])
        if packet is not None:
            _, attempt, epoch, owner, _, started = packet
            return (*row[:6], "sending", row[7], attempt, owner, epoch, *row[11:18], started,
                    *row[19:])  # fmt: skip
        claim = self.claims.get(row[0])
        if claim is None:
            return row
        _, _, owner, epoch, *_ = claim
        return (*row[:6], "claimed", row[7], row[8], owner, epoch, *row[11:])

    def listed(
        self,
        db: sqlite3.Connection,
        campaign: int,
        after: int,
        limit: int,
        records: dict[int, tuple[Any, ...]],
        state: str,
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows after ``after`` in ``state`` (sending or claimed), from
        the ids the live ``records`` list."""
        found: list[tuple[Any, ...]] = []
        ids = sorted(i for i in records if i > after)
        # A packet partly settled, or a claim partly sent, lists rows in another state
        # now: read on until the page is full, so that a short page means the end.
        for chunk in chunks(ids):
            if len(found) >= limit:
                break
            found += [
                shown
                for r in db.execute(
                    f"{_SELECT_ROWS}{_UNSETTLED}AND m.id IN ({marks(len(chunk))}) ORDER BY m.id",
                    (campaign, *chunk),
                )
                if (shown := self.shown(r))[6] == state
            ]
        return found[:limit]


def _pending(
    db: sqlite3.Connection, campaign: int, after: int, limit: int
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` rows after ``after`` that are pending, neither claimed nor
    sending: those given back (``aiosms_returned``) and those past the watermark,
    which no claim ever took."""
    given_back = db.execute(
        f"SELECT {_ROW_COLUMNS} FROM aiosms_returned AS r JOIN aiosms_messages AS m "
        f"ON m.id = r.id {_JOINS} WHERE r.campaign = ? AND r.id > ? ORDER BY r.id LIMIT ?",
        (campaign, after, limit),
    ).fetchall()
    (mark,) = db.execute(
        "SELECT claimed_to FROM aiosms_campaigns WHERE id = ?", (campaign,)
    ).fetchone()
    never_claimed = db.execute(
        f"SELECT {_ROW_COLUMNS} FROM aiosms_messages AS m {_JOINS} WHERE m.campaign = ? "
        "AND m.state = 'pending' AND m.id > ? ORDER BY m.id LIMIT ?",
        (campaign, max(after, mark), limit),
    ).fetchall()
    return sorted(given_back + never_claimed, key=lambda r: r[0])[:limit]


def tracking_page(
    db: sqlite3.Connection, campaign: int, after: int, limit: int
) -> list[tuple[int, str, str | None]]:
    """Accepted rows with a message id and no final delivery state, after ``after``."""
    found: list[tuple[int, str, str | None]] = db.execute(
        "SELECT id, message_id, delivery FROM aiosms_outcomes WHERE +campaign = ? "
        "AND state = 'accepted' AND message_id IS NOT NULL AND id > ? "
        "AND (delivery IS NULL OR delivery NOT IN (?, ?, ?)) ORDER BY id LIMIT ?",
        (campaign, after, *_FINAL_DELIVERY, limit),
    ).fetchall()
    return found


def store_delivery(
    db: sqlite3.Connection, campaign: int, updates: Sequence[tuple[int, str, int | None]]
) -> None:
    """Store delivery states: ``(row id, state, gateway code)``."""
    now = time.time()
    with Transaction(db):
        expand_packets(db, campaign)
        db.executemany(
            "UPDATE aiosms_outcomes SET delivery = ?, delivery_code = ?, "
            "delivery_at = ? WHERE id = ? AND campaign = ?",
            [(state, code, now, row_id, campaign) for row_id, state, code in updates],
        )


# -- counts ------------------------------------------------------------------------------


def counts(db: sqlite3.Connection, campaign: int) -> dict[str, int]:
    """Rows per state, every state present."""
    found = dict(
        db.execute("SELECT state, n FROM aiosms_counts WHERE campaign = ?", (campaign,)).fetchall()
    )
    return {state: int(found.get(state, 0)) for state in ALL_STATES}


def totals(db: sqlite3.Connection, campaign: int) -> tuple[int, str | None]:
    """Parts and cost (a decimal string, or None) of accepted rows: those with an outcome
    row, and those packet records keep (their sums kept beside them)."""
    (parts,) = db.execute(
        "SELECT COALESCE(SUM(COALESCE(o.parts, (SELECT m.parts FROM aiosms_messages AS m "
        "WHERE m.id = o.id))), 0) + (SELECT COALESCE(SUM(accepted_parts), 0) "
        "FROM aiosms_attempts WHERE campaign = ?1 AND accepted IS NOT NULL) "
        "FROM aiosms_outcomes AS o WHERE +o.campaign = ?1 AND o.state = 'accepted'",
        (campaign,),
    ).fetchone()
    cost: Decimal | None = None
    # Summed as decimals: money never goes through a float.
    for (value,) in db.execute(
        "SELECT cost FROM aiosms_outcomes WHERE +campaign = ?1 AND state = 'accepted' "
        "AND cost IS NOT NULL UNION ALL SELECT accepted_cost FROM aiosms_attempts "
        "WHERE campaign = ?1 AND accepted IS NOT NULL AND accepted_cost IS NOT NULL",
        (campaign,),
    ):
        cost = Decimal(value) if cost is None else cost + Decimal(value)
    return int(parts), None if cost is None else str(cost)


def settled_since(db: sqlite3.Connection, campaign: int, since: float) -> int:
    """Rows settled (accepted, rejected or unknown) at or after ``since``: outcome rows,
    and the accepted outcomes packet records keep."""
    (found,) = db.execute(
        "SELECT COUNT(*) FROM aiosms_outcomes WHERE +campaign = ? AND settled_at >= ? "
        "AND state IN ('accepted', 'rejected', 'unknown')",
        (campaign, since),
    ).fetchone()
    packed = "FROM aiosms_attempts WHERE campaign = ? AND accepted IS NOT NULL AND settled_at >= ?"
    if json_functions():
        (kept,) = db.execute(
            f"SELECT COALESCE(SUM(json_array_length(accepted)), 0) {packed}", (campaign, since)
        ).fetchone()
    else:
        kept = sum(
            len(json.loads(a))
            for (a,) in db.execute(f"SELECT accepted {packed}", (campaign, since))
        )
    return int(found) + int(kept)


def purge_campaigns(db: sqlite3.Connection, before: float) -> list[str]:
    """Delete campaigns last changed before ``before`` with nothing claimed or sending."""
    with Transaction(db):
        expand_packets(db)
        found = db.execute(
            # Last changed: the campaign's own record or any of its rows.
            "SELECT id, name FROM aiosms_campaigns c WHERE updated_at < ? "
            "AND COALESCE((SELECT MAX(created_at) FROM aiosms_messages m "
            "WHERE m.campaign = c.id), 0) < ? "
            "AND COALESCE((SELECT MAX(MAX(COALESCE(settled_at, 0), COALESCE(delivery_at, 0))) "
            "FROM aiosms_outcomes o WHERE o.campaign = c.id), 0) < ? "
            "AND NOT EXISTS (SELECT 1 FROM aiosms_claims k WHERE k.campaign = c.id) "
            "AND NOT EXISTS (SELECT 1 FROM aiosms_attempts a WHERE a.campaign = c.id "
            "AND a.unsettled > 0) ORDER BY id",
            (before, before, before),
        ).fetchall()
        for campaign, name in found:
            for table in (
                "aiosms_messages",
                "aiosms_outcomes",
                "aiosms_returned",
                "aiosms_counts",
                "aiosms_claims",
                "aiosms_claim_rows",
                "aiosms_attempts",
                "aiosms_events",
                "aiosms_workers",
            ):
                db.execute(f"DELETE FROM {table} WHERE campaign = ?", (campaign,))
            db.execute("DELETE FROM aiosms_campaigns WHERE id = ?", (campaign,))
            log_event(db, None, "purge", name)
    return [name for _, name in found]
