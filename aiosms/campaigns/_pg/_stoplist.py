"""The PostgreSQL journal's stop list: numbers never sent to, by any campaign."""

from __future__ import annotations

from collections.abc import Sequence

from aiosms.campaigns._pg._sql import Cursor

__all__ = ["add_to_stoplist", "remove_from_stoplist", "stoplist"]


def add_to_stoplist(db: Cursor, entries: Sequence[tuple[str, str]]) -> int:
    """Add ``(phone, reason)`` entries; how many were new (a known number keeps its reason)."""
    if not entries:
        return 0
    db.execute(
        "INSERT INTO aiosms_stoplist (phone, reason) "
        "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT (phone) DO NOTHING",
        ([p for p, _ in entries], [r for _, r in entries]),
    )
    return db.rowcount


def remove_from_stoplist(db: Cursor, phones: Sequence[str]) -> int:
    """Remove numbers; how many were there."""
    db.execute("DELETE FROM aiosms_stoplist WHERE phone = ANY(%s)", (list(phones),))
    return db.rowcount


def stoplist(db: Cursor) -> list[tuple[str, str]]:
    """Every ``(phone, reason)``, by number."""
    db.execute("SELECT phone, reason FROM aiosms_stoplist ORDER BY phone")
    return [(r[0], r[1]) for r in db]
