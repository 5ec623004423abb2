"""What the PostgreSQL journal's statement modules share: the cursor they take, the
row that must be there, a campaign's record as read, and the event log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeAlias

import psycopg

from aiosms.campaigns._models import CampaignInfo

__all__ = ["CAMPAIGN_COLUMNS", "Cursor", "campaign_info", "one", "record_event"]

#: A cursor inside one of the journal's transactions.
Cursor: TypeAlias = psycopg.Cursor[Any]

#: The columns ``campaign_info`` reads, in its order.
CAMPAIGN_COLUMNS = "id, name, state, reason, settings"


def one(db: Cursor) -> tuple[Any, ...]:
    """The single row the last statement returned (an aggregate, a ``RETURNING``)."""
    found = db.fetchone()
    if found is None:
        raise RuntimeError("the journal returned no row where one was expected")
    return tuple(found)


def campaign_info(r: Sequence[Any]) -> CampaignInfo:
    """A campaign's record selected as ``CAMPAIGN_COLUMNS``."""
    return CampaignInfo(r[0], r[1], r[2], r[3], json.loads(r[4]))


def record_event(db: Cursor, campaign: int | None, kind: str, detail: str | None) -> None:
    """Log what happened to a campaign (or to the journal, with no campaign)."""
    db.execute(
        "INSERT INTO aiosms_events (campaign, kind, detail) VALUES (%s, %s, %s)",
        (campaign, kind, detail),
    )
