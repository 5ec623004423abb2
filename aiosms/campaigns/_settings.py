"""A campaign's settings: checked when it is created or run, read back from its journal.

Each check raises ``ValidationError`` naming the option, before the journal is
touched. This module shapes and reads settings; it writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from aiosms._errors import ValidationError
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import CampaignInfo
from aiosms.campaigns._window import Window

__all__ = ["campaign_settings", "check_run_options", "load_info", "positive", "window_of"]


def positive(value: object, field: str, *, optional: bool = True) -> None:
    """``value`` must be a positive int (or None, when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(field, "must be a positive int")


def campaign_settings(
    *,
    sender: str | None,
    window: tuple[time, time] | None,
    tz: str | None,
    budget: int | None,
    max_parts: int | None,
    dedupe: bool,
) -> dict[str, Any]:
    """The options ``Campaign.create`` keeps with a campaign, checked, as stored."""
    if window is not None and (len(window) != 2 or not all(isinstance(t, time) for t in window)):
        raise ValidationError("window", "must be a (start, end) pair of datetime.time")
    if tz is not None:
        try:
            Window(time(0), time(0), tz)
        except Exception as error:
            raise ValidationError("tz", f"unknown time zone {tz!r}") from error
    positive(budget, "budget")
    positive(max_parts, "max_parts")
    return {
        "sender": sender,
        "window": None if window is None else [t.isoformat() for t in window],
        "tz": tz,
        "budget": budget,
        "max_parts": max_parts,
        "dedupe": bool(dedupe),
    }


def window_of(settings: Mapping[str, Any]) -> Window | None:
    """The send window the stored ``settings`` describe, if any."""
    raw = settings.get("window")
    if raw is None:
        return None
    return Window(time.fromisoformat(raw[0]), time.fromisoformat(raw[1]), settings["tz"])


def check_run_options(
    *,
    packet_size: object,
    claim_packets: object,
    max_concurrency: object,
    lease: object,
    rate: object,
) -> None:
    """The options of ``Campaign.run`` that the Batcher does not check itself."""
    positive(packet_size, "packet_size", optional=False)
    positive(claim_packets, "claim_packets", optional=False)
    positive(max_concurrency, "max_concurrency")
    if not isinstance(lease, (int, float)) or lease <= 0:
        raise ValidationError("lease", "must be a positive number of seconds")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0
    ):
        raise ValidationError("rate", "must be a positive number of messages per second")


async def load_info(journal: Journal, name: str) -> CampaignInfo:
    """The campaign ``name`` as the journal has it now; ``LookupError`` if it is gone."""
    info = await journal.get_campaign(name)
    if info is None:
        raise LookupError(f"the campaign {name!r} is gone from {journal!r}")
    return info
