"""Rows in and out of the SQLite journal: import, pages of rows, counts and totals,
delivery states, and the campaigns' list and purge.

Plain functions of a connection; ``SqliteJournal`` runs them off the event loop. A
pending row inside a live claim's range is shown as ``claimed``, under that claim's
owner and epoch (see ``_sqlite_sending``).
"""

from __future__ import annotations

import bisect
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
    log_event,
    marks,
    recount,
    tally,
)
from aiosms.campaigns._sqlite_sending import live_claims

__all__ = [
    "counts",
    "import_rows",
    "purge_campaigns",
    "rows",
    "settled_since",
    "totals",
    "tracking_page",
]

_ROW_COLUMNS = (
    "id, key, phone, text, sender, parts, state, reason, attempt, owner, epoch, message_id, "
    "error_class, error_code, error_text, cost, delivery, created_at, sent_at, settled_at, "
    "delivery_at"
)
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


def rows(
    db: sqlite3.Connection, campaign: int, state: str | None, after: int, limit: int
) -> list[Row]:
    """A page of rows in id order after ``after``, optionally of one state."""
    if state is not None and state not in ALL_STATES:
        raise ValueError(f"unknown row state {state!r}")
    claims = _Claims(live_claims(db, campaign))
    if state == "claimed":
        found = claims.rows(db, campaign, after, limit)
    elif state == "pending":
        found = _unclaimed(db, campaign, claims, after, limit)
    else:
        # Every state, or a settled one: by id (`+campaign`), not through an index to be
        # sorted.
        where = "" if state is None else f"AND state = '{state}'"
        found = [
            claims.shown(r)
            for r in db.execute(
                f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE +campaign = ? {where} "
                "AND id > ? ORDER BY id LIMIT ?",
                (campaign, after, limit),
            )
        ]
    return [read_row(r, _stamp) for r in found]


def _unclaimed(
    db: sqlite3.Connection, campaign: int, claims: _Claims, after: int, limit: int
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` pending rows after ``after`` that no live claim holds."""
    found: list[tuple[Any, ...]] = []
    while len(found) < limit:
        page = db.execute(
            f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE campaign = ? "
            "AND state = 'pending' AND id > ? ORDER BY id LIMIT ?",
            (campaign, after, limit),
        ).fetchall()
        found += [r for r in page if claims.holder(r[0]) is None]
        if len(page) < limit:
            break
        after = page[-1][0]
    return found[:limit]


class _Claims:
    """A campaign's live claims, to tell which pending rows are claimed and by whom."""

    def __init__(self, claims: list[tuple[int, int, str, int]]) -> None:
        self.claims = claims
        self.firsts = [c[0] for c in claims]

    def holder(self, row_id: int) -> tuple[int, int, str, int] | None:
        """The claim whose range holds ``row_id``, or None."""
        at = bisect.bisect_right(self.firsts, row_id) - 1
        if at >= 0 and row_id <= self.claims[at][1]:
            return self.claims[at]
        return None

    def shown(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A selected row as a reader sees it: a pending row in a claim is ``claimed``."""
        if row[6] != "pending" or (held := self.holder(row[0])) is None:
            return row
        return (*row[:6], "claimed", row[7], row[8], held[2], held[3], *row[11:])

    def rows(
        self, db: sqlite3.Connection, campaign: int, after: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` claimed rows after ``after``, claim by claim."""
        found: list[tuple[Any, ...]] = []
        for first, last, _, _ in self.claims:
            if last <= after or len(found) >= limit:
                continue
            found += [
                self.shown(r)
                for r in db.execute(
                    f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE +campaign = ? "
                    "AND state = 'pending' AND id BETWEEN ? AND ? ORDER BY id LIMIT ?",
                    (campaign, max(first, after + 1), last, limit - len(found)),
                )
            ]
        return found


def tracking_page(
    db: sqlite3.Connection, campaign: int, after: int, limit: int
) -> list[tuple[int, str, str | None]]:
    """Accepted rows with a message id and no final delivery state, after ``after``."""
    found: list[tuple[int, str, str | None]] = db.execute(
        "SELECT id, message_id, delivery FROM aiosms_messages WHERE +campaign = ? "
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
        db.executemany(
            "UPDATE aiosms_messages SET delivery = ?, delivery_code = ?, "
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
    """Parts and cost (a decimal string, or None) of accepted rows."""
    parts = 0
    cost: Decimal | None = None
    # Summed as decimals: money never goes through a float.
    for count, value in db.execute(
        "SELECT parts, cost FROM aiosms_messages WHERE +campaign = ? AND state = 'accepted'",
        (campaign,),
    ):
        parts += count
        if value is not None:
            cost = Decimal(value) if cost is None else cost + Decimal(value)
    return parts, None if cost is None else str(cost)


def settled_since(db: sqlite3.Connection, campaign: int, since: float) -> int:
    """Rows settled (accepted, rejected or unknown) at or after ``since``."""
    (found,) = db.execute(
        "SELECT COUNT(*) FROM aiosms_messages WHERE +campaign = ? AND settled_at >= ? "
        "AND state IN ('accepted', 'rejected', 'unknown')",
        (campaign, since),
    ).fetchone()
    return int(found)


def purge_campaigns(db: sqlite3.Connection, before: float) -> list[str]:
    """Delete campaigns last changed before ``before`` with nothing claimed or sending."""
    with Transaction(db):
        found = db.execute(
            # Last changed: the campaign's own record or any of its rows.
            "SELECT id, name FROM aiosms_campaigns c WHERE updated_at < ? "
            "AND COALESCE((SELECT MAX(MAX(created_at, COALESCE(settled_at, 0), "
            "COALESCE(delivery_at, 0))) FROM aiosms_messages m "
            "WHERE m.campaign = c.id), 0) < ? "
            "AND NOT EXISTS (SELECT 1 FROM aiosms_messages m WHERE m.campaign = c.id "
            "AND m.state = 'sending') "
            "AND NOT EXISTS (SELECT 1 FROM aiosms_claims k WHERE k.campaign = c.id) ORDER BY id",
            (before, before),
        ).fetchall()
        for campaign, name in found:
            for table in (
                "aiosms_messages",
                "aiosms_counts",
                "aiosms_claims",
                "aiosms_events",
                "aiosms_workers",
            ):
                db.execute(f"DELETE FROM {table} WHERE campaign = ?", (campaign,))
            db.execute("DELETE FROM aiosms_campaigns WHERE id = ?", (campaign,))
            log_event(db, None, "purge", name)
    return [name for _, name in found]
