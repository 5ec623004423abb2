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
from aiosms.campaigns._sqlite_sending import live_attempts, live_claims

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
    "m.id, m.key, m.phone, m.text, m.sender, m.parts, m.state, m.reason, "
    "COALESCE(a.attempt, m.attempt), COALESCE(a.owner, m.owner), COALESCE(a.epoch, m.epoch), "
    "m.message_id, m.error_class, m.error_code, m.error_text, m.cost, m.delivery, "
    "m.created_at, COALESCE(a.started_at, m.sent_at), m.settled_at, m.delivery_at"
)
_SELECT_ROWS = (
    f"SELECT {_ROW_COLUMNS} FROM aiosms_messages AS m "
    "LEFT JOIN aiosms_attempts AS a ON a.id = m.packet WHERE +m.campaign = ? "
)


def rows(
    db: sqlite3.Connection, campaign: int, state: str | None, after: int, limit: int
) -> list[Row]:
    """A page of rows in id order after ``after``, optionally of one state."""
    if state is not None and state not in ALL_STATES:
        raise ValueError(f"unknown row state {state!r}")
    in_flight = _InFlight(db, campaign)
    if state == "sending":
        found = in_flight.sending(db, campaign, after, limit)
    elif state == "claimed":
        found = in_flight.claimed(db, campaign, after, limit)
    elif state == "pending":
        found = in_flight.pending(db, campaign, after, limit)
    else:
        # Every state, or a settled one: by id (`+campaign`), not through an index to be
        # sorted.
        where = "" if state is None else f"AND m.state = '{state}' "
        found = [
            in_flight.shown(r)
            for r in db.execute(
                f"{_SELECT_ROWS}{where}AND m.id > ? ORDER BY m.id LIMIT ?",
                (campaign, after, limit),
            )
        ]
    return [read_row(r, _stamp) for r in found]


class _InFlight:
    """A campaign's live claims and packets, to show a row still ``pending`` in the table
    as it stands: sending (a live packet record lists it), claimed (in a live claim's
    range; a claim ends when its last row is sent) or pending."""

    def __init__(self, db: sqlite3.Connection, campaign: int) -> None:
        self.claims = live_claims(db, campaign)
        self.firsts = [c[0] for c in self.claims]
        self.packets: dict[int, tuple[int, str, int, str, list[int], float]] = {}
        for record in live_attempts(db, campaign):
            self.packets.update(dict.fromkeys(record[4], record))

    def shown(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """``row`` with the state, owner, epoch, attempt and send time a reader sees."""
        if row[6] != "pending":
            return row
        packet = self.packets.get(row[0])
        if packet is not None:
            _, attempt, epoch, owner, _, started = packet
            return (*row[:6], "sending", row[7], attempt, owner, epoch, *row[11:18], started,
                    *row[19:])  # fmt: skip
        at = bisect.bisect_right(self.firsts, row[0]) - 1
        if at < 0 or row[0] > self.claims[at][1]:
            return row
        _, _, owner, epoch, _ = self.claims[at]
        return (*row[:6], "claimed", row[7], row[8], owner, epoch, *row[11:])

    def sending(
        self, db: sqlite3.Connection, campaign: int, after: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` sending rows after ``after``: those of live packet records,
        and those an older schema marked sending in the row."""
        found: list[tuple[Any, ...]] = []
        ids = sorted(i for i in self.packets if i > after)
        # A packet partly settled lists rows no longer pending: read on until the page
        # is full, so that a short page means the end.
        for chunk in chunks(ids):
            if len(found) >= limit:
                break
            found += db.execute(
                f"{_SELECT_ROWS}AND m.state = 'pending' AND m.id IN ({marks(len(chunk))})",
                (campaign, *chunk),
            ).fetchall()
        found += db.execute(
            f"{_SELECT_ROWS}AND m.state = 'sending' AND m.id > ? ORDER BY m.id LIMIT ?",
            (campaign, after, limit),
        ).fetchall()
        found.sort(key=lambda r: r[0])
        return [self.shown(r) for r in found[:limit]]

    def claimed(
        self, db: sqlite3.Connection, campaign: int, after: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` claimed rows after ``after``, claim by claim."""
        found: list[tuple[Any, ...]] = []
        for first, last, *_ in self.claims:
            if last <= after or len(found) >= limit:
                continue
            found += [
                shown
                for r in db.execute(
                    f"{_SELECT_ROWS}AND m.state = 'pending' AND m.id BETWEEN ? AND ? ORDER BY m.id",
                    (campaign, max(first, after + 1), last),
                )
                if (shown := self.shown(r))[6] == "claimed"
            ]
        return found[:limit]

    def pending(
        self, db: sqlite3.Connection, campaign: int, after: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows after ``after`` that are pending, neither claimed nor
        sending."""
        found: list[tuple[Any, ...]] = []
        while len(found) < limit:
            page = db.execute(
                f"SELECT {_ROW_COLUMNS} FROM aiosms_messages AS m LEFT JOIN aiosms_attempts "
                "AS a ON a.id = m.packet WHERE m.campaign = ? AND m.state = 'pending' "
                "AND m.id > ? ORDER BY m.id LIMIT ?",
                (campaign, after, limit),
            ).fetchall()
            found += [r for r in page if self.shown(r)[6] == "pending"]
            if len(page) < limit:
                break
            after = page[-1][0]
        return found[:limit]


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
    (parts,) = db.execute(
        "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages "
        "WHERE +campaign = ? AND state = 'accepted'",
        (campaign,),
    ).fetchone()
    cost: Decimal | None = None
    # Summed as decimals: money never goes through a float.
    for (value,) in db.execute(
        "SELECT cost FROM aiosms_messages WHERE +campaign = ? AND state = 'accepted' "
        "AND cost IS NOT NULL",
        (campaign,),
    ):
        cost = Decimal(value) if cost is None else cost + Decimal(value)
    return int(parts), None if cost is None else str(cost)


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
            "AND NOT EXISTS (SELECT 1 FROM aiosms_claims k WHERE k.campaign = c.id) "
            "AND NOT EXISTS (SELECT 1 FROM aiosms_attempts a WHERE a.campaign = c.id "
            "AND a.unsettled > 0) ORDER BY id",
            (before, before),
        ).fetchall()
        for campaign, name in found:
            for table in (
                "aiosms_messages",
                "aiosms_counts",
                "aiosms_claims",
                "aiosms_attempts",
                "aiosms_events",
                "aiosms_workers",
            ):
                db.execute(f"DELETE FROM {table} WHERE campaign = ?", (campaign,))
            db.execute("DELETE FROM aiosms_campaigns WHERE id = ?", (campaign,))
            log_event(db, None, "purge", name)
    return [name for _, name in found]
