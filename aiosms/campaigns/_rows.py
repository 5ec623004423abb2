"""A message as a row to import: its parts counted, too-long ones skipped.

Shared by ``Campaign.add`` and ``PostgresJournal.enqueue``, so a row enqueued in the
application's own transaction is judged exactly as one imported by a campaign.
"""

from __future__ import annotations

from aiosms._models import Message
from aiosms._segments import count_parts
from aiosms.campaigns._models import NewRow

__all__ = ["new_row"]


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
