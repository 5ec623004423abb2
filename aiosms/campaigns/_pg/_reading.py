"""A campaign's rows read from the PostgreSQL journal: counts and totals for progress
and summaries, pages for reports and export, and the delivery tracking's pages and
the states it stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiosms.campaigns._models import ALL_STATES, Row
from aiosms.campaigns._pg._sql import Cursor, one
from aiosms.campaigns._rows import read_row

__all__ = ["counts", "rows", "store_delivery", "totals", "tracking_page"]

_ROW_COLUMNS = (
    "id, key, phone, text, sender, parts, state, reason, attempt, owner, epoch, message_id, "
    "error_class, error_code, error_text, cost, delivery, created_at, sent_at, settled_at, "
    "delivery_at"
)
_FINAL_DELIVERY = ["delivered", "undelivered", "rejected"]


def counts(db: Cursor, campaign: int) -> dict[str, int]:
    """Rows per state, every state present."""
    db.execute(
        "SELECT state, COUNT(*) FROM aiosms_messages WHERE campaign = %s GROUP BY state",
        (campaign,),
    )
    found = dict(db.fetchall())
    return {state: int(found.get(state, 0)) for state in ALL_STATES}


def totals(db: Cursor, campaign: int) -> tuple[int, str | None]:
    """Parts and cost (a decimal string, or None) of the accepted rows."""
    # Summed as numerics: money never goes through a float.
    db.execute(
        "SELECT COALESCE(SUM(parts), 0), SUM(cost::numeric) FROM aiosms_messages "
        "WHERE campaign = %s AND state = 'accepted'",
        (campaign,),
    )
    parts, cost = one(db)
    return int(parts), None if cost is None else str(cost)


def rows(db: Cursor, campaign: int, state: str | None, after: int, limit: int) -> list[Row]:
    """A page of rows in id order after row id ``after``, optionally of one state."""
    query = f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE campaign = %s AND id > %s"
    params: list[Any] = [campaign, after]
    if state is not None:
        query += " AND state = %s"
        params.append(state)
    query += " ORDER BY id LIMIT %s"
    params.append(limit)
    db.execute(query, params)
    return [read_row(r, _as_is) for r in db]


def tracking_page(
    db: Cursor, campaign: int, after: int, limit: int
) -> list[tuple[int, str, str | None]]:
    """Accepted rows with a message id and no final delivery state yet, after ``after``."""
    db.execute(
        "SELECT id, message_id, delivery FROM aiosms_messages WHERE campaign = %s "
        "AND state = 'accepted' AND message_id IS NOT NULL AND id > %s "
        "AND (delivery IS NULL OR NOT delivery = ANY(%s)) ORDER BY id LIMIT %s",
        (campaign, after, _FINAL_DELIVERY, limit),
    )
    return [(r[0], r[1], r[2]) for r in db]


def store_delivery(
    db: Cursor, campaign: int, updates: Sequence[tuple[int, str, int | None]]
) -> None:
    """Store delivery states: ``(row id, state, gateway code)``."""
    db.executemany(
        "UPDATE aiosms_messages SET delivery = %s, delivery_code = %s, "
        "delivery_at = now() WHERE id = %s AND campaign = %s",
        [(state, code, row_id, campaign) for row_id, state, code in updates],
    )


def _as_is(value: datetime | None) -> datetime | None:
    # psycopg gives timestamps as aware datetimes already.
    return value
