"""Kept for modules that still import the outcome helpers from here: they live in
``aiosms._outcomes`` now."""

from __future__ import annotations

from aiosms._outcomes import (
    ACCOUNT_LEVEL,
    REFUSED_STATUSES,
    check_parts,
    failed,
    not_sent,
    require_id,
    require_message,
    stops_the_flow,
    unexpected,
    unexpected_read,
)

__all__ = [
    "ACCOUNT_LEVEL",
    "REFUSED_STATUSES",
    "check_parts",
    "failed",
    "not_sent",
    "require_id",
    "require_message",
    "stops_the_flow",
    "unexpected",
    "unexpected_read",
]
