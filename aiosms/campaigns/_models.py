"""What a campaign journal stores and hands back: row states, rows, claims, summaries.

Plain data, no I/O. The journal backends and the runner speak in these types, so a
backend is a translation of them into its own SQL and nothing more.
"""

# No ``from __future__ import annotations`` here: these classes are re-exported as
# ``aiosms.campaigns.X``, so string annotations would be looked up in the wrong module
# by ``typing.get_type_hints`` and cattrs. Evaluated now, they hold the types themselves.
import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

__all__ = [
    "CampaignInfo",
    "Claim",
    "ClaimedRow",
    "ImportResult",
    "NewRow",
    "Outcome",
    "Row",
    "RowState",
    "Summary",
]


class RowState(str, enum.Enum):
    """Where a campaign's message is in the journal.

    ``pending → claimed → sending → accepted | rejected | unknown``; ``skipped`` for
    rows refused at import (or found stop-listed when claimed). ``sending`` is written
    and committed before the request leaves; ``unknown`` means the message may have
    gone out, and aiosms never sends it again by itself.
    """

    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


#: Every state, in the order of the state machine (counts list them all, zeros too).
ALL_STATES: tuple[str, ...] = tuple(state.value for state in RowState)


@attrs.frozen(slots=True)
class CampaignInfo:
    """A campaign's own record: id, name, ``active`` or ``paused`` (and why), settings."""

    id: int
    name: str
    state: str
    reason: str | None
    settings: Mapping[str, Any]


class NewRow(NamedTuple):
    """A row to import. ``state`` is ``pending`` or ``skipped`` (then ``reason`` says why)."""

    key: str
    phone: str
    text: str
    sender: str | None
    at: str | None
    ttl: int | None
    parts: int
    state: str
    reason: str | None


class ClaimedRow(NamedTuple):
    """A row handed to a worker by a claim: what it needs to build the message."""

    id: int
    phone: str
    text: str
    sender: str | None
    at: str | None
    ttl: int | None


@attrs.frozen(slots=True)
class Claim:
    """Rows claimed for one owner under one fencing epoch.

    ``budget_exhausted`` is True when the next pending row would overrun the budget.
    """

    epoch: int
    rows: list[ClaimedRow]
    budget_exhausted: bool = False


class Outcome(NamedTuple):
    """What became of one sent row: the state and what the receipt said."""

    id: int
    state: str
    message_id: str | None
    parts: int | None
    cost: str | None
    error_class: str | None
    error_code: int | None
    error_text: str | None
    delivery: str | None
    reason: str | None = None


@attrs.frozen(slots=True)
class ImportResult:
    """Rows an import added (as pending or as skipped); rows already there are not counted."""

    added: int
    skipped: int


@attrs.frozen(slots=True)
class Row:
    """One row of a campaign as the journal holds it (for export and reports)."""

    id: int
    key: str
    phone: str
    text: str
    sender: str | None
    parts: int
    state: RowState
    reason: str | None
    attempt: str | None
    owner: str | None
    epoch: int | None
    message_id: str | None
    error_class: str | None
    error_code: int | None
    error_text: str | None
    cost: Decimal | None
    delivery: str | None
    created_at: datetime | None
    sent_at: datetime | None
    settled_at: datetime | None
    delivery_at: datetime | None


@attrs.frozen(slots=True)
class Summary:
    """Where a campaign stands after a run (or at any time).

    ``state``: ``done`` (nothing left to send), ``paused`` (``reason`` says why: an
    account-level refusal, the budget, or the user), ``window`` (outside the send
    window; ``reason`` says when it opens), ``interrupted`` (``Campaign.interrupt()``:
    run again) or ``incomplete`` (rows left, no reason: run again). ``counts`` has
    every state; ``parts`` and ``cost`` add up the accepted rows (``cost`` None where
    the gateway gives no price); ``sent`` is how many rows this run committed as
    ``sending`` for a request.
    """

    name: str
    state: str
    reason: str | None
    counts: Mapping[str, int]
    parts: int
    cost: Decimal | None
    sent: int = 0

    @property
    def paused(self) -> bool:
        """True when the campaign is paused and needs ``resume()`` to go on."""
        return self.state == "paused"
