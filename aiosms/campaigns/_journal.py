"""The journal interface: what a campaign needs from durable storage, and nothing more.

Every method works on whole claims, packets or pages, never on one message at a
time, and every backend runs its blocking driver off the event loop. The runner
and the command line speak only to this interface; SQL lives in the backends.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from aiosms.campaigns._models import (
    CampaignInfo,
    Claim,
    ImportResult,
    NewRow,
    Outcome,
    Row,
)

__all__ = ["Journal"]

_J = TypeVar("_J", bound="Journal")


class Journal(abc.ABC):
    """Durable record of campaigns, their rows' states, and the stop list.

    The state machine it keeps (see ``RowState``): rows are imported ``pending`` or
    ``skipped``; ``claim`` makes them ``claimed`` under an owner, a new epoch and a
    lease; ``begin_send`` turns a packet ``sending`` (committed durably) only where
    owner, epoch and lease still hold (fencing) and says which rows it turned;
    ``finish`` settles them ``accepted``, ``rejected`` or ``unknown`` by attempt id.
    Only ``requeue`` turns settled rows back to ``pending``.

    Usable as an async context manager (closes on exit).
    """

    async def __aenter__(self: _J) -> _J:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the journal's connection (harmless twice)."""

    # -- campaigns ---------------------------------------------------------------------

    @abc.abstractmethod
    async def create_campaign(self, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
        """The campaign called ``name``, created with ``settings`` if it does not exist."""

    @abc.abstractmethod
    async def get_campaign(self, name: str) -> CampaignInfo | None:
        """The campaign called ``name``, or None."""

    @abc.abstractmethod
    async def list_campaigns(self) -> list[CampaignInfo]:
        """Every campaign, oldest first."""

    @abc.abstractmethod
    async def set_campaign_state(
        self,
        campaign: int,
        state: str,
        reason: str | None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Mark a campaign ``active`` or ``paused`` (with the reason), logged; optionally
        replace its settings."""

    async def purge_campaigns(self, before: float) -> list[str]:
        """Delete campaigns last changed before ``before`` (a Unix time), with their rows
        and events, unless a row is ``claimed`` or ``sending``; returns their names."""
        raise NotImplementedError(f"{type(self).__name__} cannot purge campaigns")

    async def settled_since(self, campaign: int, since: float) -> int:
        """Rows settled (accepted, rejected or unknown) at or after ``since`` (a Unix
        time): what a progress display divides by the time to get a rate."""
        raise NotImplementedError(f"{type(self).__name__} cannot count settled rows")

    # -- rows --------------------------------------------------------------------------

    @abc.abstractmethod
    async def import_rows(
        self, campaign: int, rows: Sequence[NewRow], *, dedupe: bool
    ) -> ImportResult:
        """Add rows whose key the campaign does not have yet (others are left alone).

        Pending rows whose number is on the stop list, or (with ``dedupe``) whose number
        the campaign already has, are added as ``skipped`` with the reason.
        """

    @abc.abstractmethod
    async def recover(self, campaign: int) -> tuple[int, int]:
        """At start-up: the rows of workers that are gone. Their ``sending`` rows become
        ``unknown`` (worker lost) and their ``claimed`` rows ``pending``. Returns (lost,
        released).

        Which workers are gone is the backend's knowledge: on one machine (SQLite)
        every earlier worker is; with heartbeats (PostgreSQL) only those whose
        heartbeat is stale or missing, so live workers elsewhere are left alone.
        """

    @abc.abstractmethod
    async def claim(
        self, campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        """Claim up to ``limit`` pending rows (and rows whose lease expired) for ``owner``.

        Stop-listed rows found on the way become ``skipped``. With a ``budget`` (in
        parts), rows are claimed only while the parts of every row claimed, sending,
        accepted or unknown stay within it.
        """

    @abc.abstractmethod
    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        """Turn a packet's ``(row id, epoch)`` rows ``sending`` under ``attempt``, durably.

        A compare-and-set on owner, epoch, state ``claimed`` and an unexpired lease;
        returns the ids it changed: only those may be sent.
        """

    @abc.abstractmethod
    async def finish(
        self,
        campaign: int,
        attempt: str,
        outcomes: Sequence[Outcome],
        *,
        stop_list: Iterable[tuple[str, str]] = (),
        pause: str | None = None,
    ) -> int:
        """Settle a packet's rows (matched by id and attempt, even if already marked
        ``unknown``: a late outcome wins); add numbers to the stop list and pause the
        campaign in the same transaction. Returns rows settled."""

    @abc.abstractmethod
    async def release(self, campaign: int, owner: str) -> int:
        """``claimed`` rows of ``owner`` go back to ``pending``; returns how many."""

    @abc.abstractmethod
    async def heartbeat(self, campaign: int, owner: str, lease: float) -> CampaignInfo:
        """Record that ``owner`` lives and extend its claimed rows' lease; returns the
        campaign as it stands (a pause from elsewhere shows here)."""

    async def live_workers(self, campaign: int) -> int:
        """How many workers are running the campaign now (at least 1), so that a
        campaign's rate can be shared among them. One, unless the backend knows better."""
        return 1

    @abc.abstractmethod
    async def requeue(self, campaign: int, state: str, *, reason: str | None = None) -> int:
        """Rows in ``state`` (optionally only those with this ``reason``) back to
        ``pending``, logged. The caller decides whether that may send twice."""

    # -- reading -----------------------------------------------------------------------

    @abc.abstractmethod
    async def counts(self, campaign: int) -> dict[str, int]:
        """Rows per state, every state present."""

    @abc.abstractmethod
    async def totals(self, campaign: int) -> tuple[int, str | None]:
        """Parts and cost (a decimal string, None if no row has one) of accepted rows."""

    @abc.abstractmethod
    async def rows(
        self, campaign: int, *, state: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Row]:
        """A page of rows in id order, after row id ``after``, optionally of one state."""

    @abc.abstractmethod
    async def tracking_page(
        self, campaign: int, *, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        """Accepted rows with a message id and no final delivery state yet:
        ``(row id, message id, delivery state)``, in id order after ``after``."""

    @abc.abstractmethod
    async def store_delivery(
        self, campaign: int, updates: Sequence[tuple[int, str, int | None]]
    ) -> None:
        """Store delivery states: ``(row id, state, gateway code)``."""

    # -- stop list ---------------------------------------------------------------------

    @abc.abstractmethod
    async def stoplist_add(self, entries: Iterable[tuple[str, str]]) -> int:
        """Add ``(phone, reason)`` entries (normalised numbers); returns how many were new."""

    @abc.abstractmethod
    async def stoplist_remove(self, phones: Iterable[str]) -> int:
        """Remove numbers from the stop list; returns how many were there."""

    @abc.abstractmethod
    async def stoplist(self) -> list[tuple[str, str]]:
        """Every ``(phone, reason)`` on the stop list, by number."""
