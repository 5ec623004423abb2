"""The campaigns' own records in the PostgreSQL journal: created, found, paused or
resumed, purged, and the event log of what happened to them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiosms.campaigns._models import CampaignInfo
from aiosms.campaigns._pg._sql import Cursor, one, record_event
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info

__all__ = [
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "purge_campaigns",
    "set_campaign_state",
    "settled_since",
]


def create_campaign(db: Cursor, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
    """The campaign called ``name``, created with ``settings`` if it does not exist."""
    db.execute(
        "INSERT INTO aiosms_campaigns (name, settings) VALUES (%s, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (name, json.dumps(dict(settings))),
    )
    info = get_campaign(db, name)
    assert info is not None
    return info


def get_campaign(db: Cursor, name: str) -> CampaignInfo | None:
    """The campaign called ``name``, or None."""
    db.execute(f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns WHERE name = %s", (name,))
    found = db.fetchone()
    return None if found is None else campaign_info(found)


def list_campaigns(db: Cursor) -> list[CampaignInfo]:
    """Every campaign, oldest first."""
    db.execute(f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns ORDER BY id")
    return [campaign_info(r) for r in db]


def set_campaign_state(
    db: Cursor,
    campaign: int,
    state: str,
    reason: str | None,
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Mark a campaign ``active`` or ``paused`` with the reason, logged; optionally
    replace its settings."""
    db.execute(
        "UPDATE aiosms_campaigns SET state = %s, reason = %s, updated_at = now() WHERE id = %s",
        (state, reason, campaign),
    )
    record_event(db, campaign, state, reason)
    if settings is not None:
        db.execute(
            "UPDATE aiosms_campaigns SET settings = %s WHERE id = %s",
            (json.dumps(dict(settings)), campaign),
        )


def purge_campaigns(db: Cursor, before: float) -> list[str]:
    """Delete campaigns last changed before ``before`` (a Unix time), with their rows,
    events and workers, unless a row is ``claimed`` or ``sending``; their names."""
    found = db.execute(
        # Last changed: the campaign's own record or any of its rows.
        "SELECT id, name FROM aiosms_campaigns c WHERE updated_at < to_timestamp(%s) "
        "AND COALESCE((SELECT MAX(GREATEST(created_at, settled_at, delivery_at)) "
        "FROM aiosms_messages m WHERE m.campaign = c.id), 'epoch') < to_timestamp(%s) "
        "AND NOT EXISTS (SELECT 1 FROM aiosms_messages m WHERE m.campaign = c.id "
        "AND m.state IN ('claimed', 'sending')) ORDER BY id FOR UPDATE",
        (before, before),
    ).fetchall()
    for campaign, name in found:
        for table in ("aiosms_messages", "aiosms_events", "aiosms_workers"):
            db.execute(f"DELETE FROM {table} WHERE campaign = %s", (campaign,))
        db.execute("DELETE FROM aiosms_campaigns WHERE id = %s", (campaign,))
        record_event(db, None, "purge", name)
    return [str(name) for _, name in found]


def settled_since(db: Cursor, campaign: int, since: float) -> int:
    """Rows settled (accepted, rejected or unknown) at or after ``since`` (a Unix time)."""
    db.execute(
        "SELECT COUNT(*) FROM aiosms_messages WHERE campaign = %s "
        "AND settled_at >= to_timestamp(%s) "
        "AND state IN ('accepted', 'rejected', 'unknown')",
        (campaign, since),
    )
    return int(one(db)[0])
