"""The send window: the hours of the day, in one time zone, when rows may be claimed.

Moscow (fixed UTC+3, no DST since 2014) by default, so no tzdata is needed; a
time-zone name goes through ``zoneinfo``. A window whose end is before its start
wraps past midnight.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from aiosms._validation import MOSCOW

__all__ = ["MOSCOW", "Window"]


def zone(name: str | None) -> tzinfo:
    if name is None:
        return MOSCOW
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class Window:
    """``start`` ≤ local time < ``end`` in ``tz`` (a name, or None for Moscow)."""

    def __init__(self, start: time, end: time, tz: str | None = None) -> None:
        self.start = start
        self.end = end
        self.tz_name = tz
        self.tz = zone(tz)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_opening(self, now: datetime) -> datetime:
        """When the window next opens (``now`` itself if it is open)."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.tz)
        opening = local.replace(
            hour=self.start.hour,
            minute=self.start.minute,
            second=self.start.second,
            microsecond=self.start.microsecond,
        )
        if opening <= local:
            opening += timedelta(days=1)
        return opening

    def settings(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]
