"""What the PostgreSQL journal's statement modules share: the cursor they take, the
row that must be there, and the event log."""

from __future__ import annotations

from typing import Any, TypeAlias

import psycopg

__all__ = ["Cursor", "one", "record_event"]

#: A cursor inside one of the journal's transactions.
Cursor: TypeAlias = psycopg.Cursor[Any]


def one(db: Cursor) -> tuple[Any, ...]:
    """The single row the last statement returned (an aggregate, a ``RETURNING``)."""
    found = db.fetchone()
    if found is None:
        raise RuntimeError("the journal returned no row where one was expected")
    return tuple(found)


def record_event(db: Cursor, campaign: int | None, kind: str, detail: str | None) -> None:
    """Log what happened to a campaign (or to the journal, with no campaign)."""
    db.execute(
        "INSERT INTO aiosms_events (campaign, kind, detail) VALUES (%s, %s, %s)",
        (campaign, kind, detail),
    )
