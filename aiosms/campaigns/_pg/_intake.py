"""Rows into the PostgreSQL journal: a campaign's import, and messages enqueued in the
application's own transaction, judged alike (stop list, duplicates, known keys)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from aiosms._errors import ValidationError
from aiosms._models import Message
from aiosms.campaigns._models import ImportResult, NewRow
from aiosms.campaigns._pg._schema import ensure_schema
from aiosms.campaigns._pg._sql import Cursor
from aiosms.campaigns._rows import new_row

__all__ = ["enqueue", "import_rows"]

#: One row as inserted: (campaign, key, phone, text, sender, at, ttl, parts, state, reason).
_Values = tuple[int, str, str, str, str | None, str | None, int | None, int, str, str | None]


def import_rows(db: Cursor, campaign: int, rows: Sequence[NewRow], *, dedupe: bool) -> ImportResult:
    """Add rows whose key the campaign does not have yet; pending rows whose number is
    stop-listed, or (with ``dedupe``) already in the campaign, are added ``skipped``."""
    phones = sorted({r.phone for r in rows if r.state == "pending"})
    db.execute("SELECT phone FROM aiosms_stoplist WHERE phone = ANY(%s)", (phones,))
    stopped = {r[0] for r in db}
    taken: set[str] = set()
    if dedupe:
        db.execute(
            "SELECT phone FROM aiosms_messages WHERE campaign = %s AND phone = ANY(%s)",
            (campaign, phones),
        )
        taken.update(r[0] for r in db)
    db.execute(
        "SELECT key FROM aiosms_messages WHERE campaign = %s AND key = ANY(%s)",
        (campaign, [r.key for r in rows]),
    )
    known = {r[0] for r in db}
    values = _judged(campaign, rows, known, stopped, taken if dedupe else None)
    if not values:
        return ImportResult(0, 0)
    return ImportResult(_insert(db, values), sum(v[8] == "skipped" for v in values))


def enqueue(db: Cursor, campaign: str, messages: Iterable[Message]) -> ImportResult:
    """Add keyed ``messages`` to the campaign called ``campaign`` with its settings
    (sender, ``max_parts``, dedupe), in the cursor's transaction."""
    batch = list(messages)
    for message in batch:
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        if message.key is None:
            raise ValidationError("key", "is required to enqueue a message (idempotency)")
    ensure_schema(db)
    db.execute("SELECT id, settings FROM aiosms_campaigns WHERE name = %s", (campaign,))
    found = db.fetchone()
    if found is None:
        raise LookupError(f"no campaign named {campaign!r}")
    campaign_id, raw = found
    settings = json.loads(raw)
    rows = [
        new_row(str(m.key), m, settings.get("sender"), settings.get("max_parts")) for m in batch
    ]
    return import_rows(db, campaign_id, rows, dedupe=bool(settings.get("dedupe", True)))


def _judged(
    campaign: int,
    rows: Sequence[NewRow],
    known: set[str],
    stopped: set[str],
    taken: set[str] | None,
) -> list[_Values]:
    """The rows to insert, each once, in order: a known key is left out; a pending
    number stop-listed, or already ``taken`` (when deduplicating), is skipped."""
    values: list[_Values] = []
    for row in rows:
        if row.key in known:
            continue
        known.add(row.key)
        state, reason = row.state, row.reason
        if state == "pending":
            if row.phone in stopped:
                state, reason = "skipped", "stop-listed"
            elif taken is not None and row.phone in taken:
                state, reason = "skipped", "duplicate number"
            elif taken is not None:
                taken.add(row.phone)
        values.append(
            (campaign, row.key, row.phone, row.text, row.sender, row.at, row.ttl, row.parts,
             state, reason)
        )  # fmt: skip
    return values


def _insert(db: Cursor, values: Sequence[_Values]) -> int:
    """Insert judged rows in one statement; how many went in (a key imported meanwhile
    by someone else is left alone)."""
    db.execute(
        "INSERT INTO aiosms_messages (campaign, key, phone, text, sender, at, ttl, parts, "
        "state, reason) SELECT campaign, key, phone, text, sender, at, ttl, parts, state, reason "
        "FROM unnest(%s::bigint[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::text[], %s::text[]) "
        "WITH ORDINALITY AS u(campaign, key, phone, text, sender, at, ttl, parts, state, "
        "reason, n) ORDER BY n ON CONFLICT (campaign, key) DO NOTHING",
        [list(c) for c in zip(*values, strict=True)],
    )
    return db.rowcount
