"""Tracking: poll sent messages' states and report each change until all are final.

Reads states through the client's ``status_many``; sends nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Iterable

import anyio

from aiosms import _validation as v
from aiosms._errors import SmsError, ValidationError
from aiosms._gateway import PacketSender
from aiosms._models import DeliveryState, Receipt, StatusReport
from aiosms._outcomes import require_id, stops_the_flow

__all__ = ["track"]

logger = logging.getLogger("aiosms.batcher")


async def track(
    client: PacketSender,
    receipts_or_ids: Iterable[Receipt | str],
    *,
    interval: float,
    max_interval: float,
    deadline: float | None,
) -> AsyncGenerator[StatusReport, None]:
    """``Batcher.track``: see its docstring for the rules."""
    interval = v.positive_number(interval, "interval")
    max_interval = v.positive_number(max_interval, "max_interval")
    if max_interval < interval:
        raise ValidationError("max_interval", "must not be less than interval")
    deadline = v.optional(v.positive_number, deadline, "deadline")
    known: dict[str, DeliveryState | None] = {}
    for entry in receipts_or_ids:
        if isinstance(entry, Receipt):
            if entry.message_id is None:
                yield _untrackable(entry)
                continue
            known[entry.message_id] = entry.state
        else:
            known[require_id(entry)] = None
    waiting = [i for i, state in known.items() if not _final(state)]
    delay = interval
    end = anyio.current_time() + (math.inf if deadline is None else deadline)
    while waiting and anyio.current_time() < end:
        poll = await _poll(client, waiting, known, end)
        for report in poll.changes:
            yield report
        if poll.refusal is not None:
            raise poll.refusal
        if poll.unanswered is not None:
            logger.warning("tracking: status failed (%s); asking again", poll.unanswered)
        waiting = [i for i in waiting if not _final(known[i])]
        if not waiting:
            return
        delay = interval if poll.changes else min(delay * 1.5, max_interval)
        await anyio.sleep(max(0.0, min(delay, end - anyio.current_time())))


def _untrackable(receipt: Receipt) -> StatusReport:
    error = receipt.error or ValidationError("message_id", "the receipt has no id to track")
    return StatusReport("", receipt.state, error=error)


class _Poll:
    """One poll's outcome: the changed reports (in the reply's order), then why to
    stop (an account-level refusal) or what left some messages unanswered."""

    __slots__ = ("changes", "refusal", "unanswered")

    def __init__(self) -> None:
        self.changes: list[StatusReport] = []
        self.refusal: SmsError | None = None
        self.unanswered: SmsError | None = None


async def _poll(
    client: PacketSender, waiting: list[str], known: dict[str, DeliveryState | None], end: float
) -> _Poll:
    poll = _Poll()
    reports: list[StatusReport] = []
    # Awaited here, never across a yield: a generator must not hold a cancel scope open.
    with anyio.move_on_after(end - anyio.current_time()):
        reports = await client.status_many(waiting)
    for report in reports:
        if report.state is DeliveryState.UNKNOWN and report.error is not None:
            if stops_the_flow(report.error):
                # It would repeat at every poll until the deadline.
                poll.refusal = report.error
                return poll
            poll.unanswered = poll.unanswered or report.error
            continue
        if report.state != known.get(report.message_id):
            known[report.message_id] = report.state
            poll.changes.append(report)
    return poll


def _final(state: DeliveryState | None) -> bool:
    return state is not None and state.is_final
