"""Delivery tracking: poll the states of a campaign's accepted messages into its journal.

A page of accepted rows at a time (``Journal.tracking_page``), one ``status_many``
call per page, the changed states stored in one ``Journal.store_delivery`` call and
then yielded; polls back off while nothing changes, until every message is final or
the deadline passes. Tracking reads states only: it never sends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import anyio

from aiosms._errors import ProtocolError, ProviderError, SmsError, TransportError
from aiosms._models import StatusReport
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._settings import positive

if TYPE_CHECKING:
    from aiosms._client import BaseClient

__all__ = ["track"]

logger = logging.getLogger("aiosms.campaigns")


async def track(
    journal: Journal,
    campaign_id: int,
    client: BaseClient,
    *,
    interval: float,
    max_interval: float,
    deadline: float | None,
    page_size: int,
) -> AsyncIterator[StatusReport]:
    """Each stored change of delivery state, as ``Campaign.track`` describes it."""
    positive(page_size, "page_size", optional=False)
    delay = float(interval)
    end = anyio.current_time() + (float("inf") if deadline is None else deadline)
    while True:
        changed = False
        waiting = 0
        after = 0
        while True:
            page = await journal.tracking_page(campaign_id, after=after, limit=page_size)
            if not page:
                break
            after = page[-1][0]
            fresh, still = await _poll(journal, campaign_id, client, page, end)
            waiting += still
            changed = changed or bool(fresh)
            for report in fresh:
                yield report
            if len(page) < page_size:
                break
        if waiting == 0 or anyio.current_time() >= end:
            return
        delay = float(interval) if changed else min(delay * 1.5, max_interval)
        await anyio.sleep(max(0.0, min(delay, end - anyio.current_time())))


async def _poll(
    journal: Journal,
    campaign_id: int,
    client: BaseClient,
    page: Sequence[tuple[int, str, str | None]],
    end: float,
) -> tuple[list[StatusReport], int]:
    """One page asked about and its changes stored: (the changed reports, how many of
    the page are not final yet, unanswered ones included)."""
    reports: list[StatusReport] = []
    # The caller yields: a generator must not hold a cancel scope open across a yield.
    with anyio.move_on_after(max(0.0, end - anyio.current_time())):
        try:
            reports = await client.status_many([m for _, m, _ in page])
        except SmsError as error:
            if not _passing(error):
                raise
            logger.warning("tracking: status failed (%s); trying again", error)
    updates: list[tuple[int, str, int | None]] = []
    fresh: list[StatusReport] = []
    waiting = len(page) - len(reports)
    for (row_id, _, known), report in zip(page, reports, strict=False):
        if not report.state.is_final:
            waiting += 1
        if report.state.value != known:
            updates.append((row_id, report.state.value, report.code))
            fresh.append(report)
    if updates:
        await journal.store_delivery(campaign_id, updates)
    return fresh, waiting


def _passing(error: SmsError) -> bool:
    """A fault worth another look (the next poll may get through)."""
    return isinstance(error, (TransportError, ProtocolError)) or (
        isinstance(error, ProviderError) and error.transient
    )
