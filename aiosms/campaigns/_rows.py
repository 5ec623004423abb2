"""Rows in and out of a journal, the same for every backend.

``new_row`` is shared by ``Campaign.add`` and ``PostgresJournal.enqueue``, so a row
enqueued in the application's own transaction is judged exactly as one imported by a
campaign; ``read_row`` turns a selected row (in ``ROW_COLUMNS`` order) into a ``Row``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiosms._models import Message
from aiosms._segments import count_parts
from aiosms.campaigns._models import CampaignInfo, NewRow, Row, RowState

__all__ = ["CAMPAIGN_COLUMNS", "campaign_info", "new_row", "read_row"]

#: The columns ``campaign_info`` reads, in its order.
CAMPAIGN_COLUMNS = "id, name, state, reason, settings"


def new_row(key: str, message: Message, sender: str | None, max_parts: int | None) -> NewRow:
    """``message`` as a row under ``key``; ``sender`` fills in a missing sender."""
    parts = count_parts(message.text)
    state, reason = "pending", None
    if max_parts is not None and parts > max_parts:
        state, reason = "skipped", f"too many parts ({parts} > {max_parts})"
    at = None if message.at is None else message.at.isoformat()
    return NewRow(
        key, message.to, message.text, message.sender or sender, at, message.ttl,
        parts, state, reason,
    )  # fmt: skip


def read_row(r: Sequence[Any], stamp: Callable[[Any], datetime | None]) -> Row:
    """A selected row as a ``Row``; ``stamp`` reads the backend's timestamps."""
    return Row(
        id=r[0],
        key=r[1],
        phone=r[2],
        text=r[3],
        sender=r[4],
        parts=r[5],
        state=RowState(r[6]),
        reason=r[7],
        attempt=r[8],
        owner=r[9],
        epoch=r[10],
        message_id=r[11],
        error_class=r[12],
        error_code=r[13],
        error_text=r[14],
        cost=None if r[15] is None else Decimal(r[15]),
        delivery=r[16],
        created_at=stamp(r[17]),
        sent_at=stamp(r[18]),
        settled_at=stamp(r[19]),
        delivery_at=stamp(r[20]),
    )


def campaign_info(r: Sequence[Any]) -> CampaignInfo:
    """A campaign's record selected as ``CAMPAIGN_COLUMNS``."""
    return CampaignInfo(r[0], r[1], r[2], r[3], json.loads(r[4]))
