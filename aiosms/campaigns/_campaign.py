"""A campaign: a named set of messages sent at most once each, through a journal.

``Campaign`` is the facade: it builds and opens campaigns, answers questions about
them, and changes their state (pause, resume, requeue), while import
(``_import``), sending (``_runner`` and ``_run``: the Batcher's per-packet hooks
write intent, ``sending``, before each request and outcomes after it) and delivery
tracking (``_tracking``) are modules of their own. It holds no SQL: every durable
step is one ``Journal`` call per claim, packet or page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from datetime import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiosms._errors import ValidationError
from aiosms._models import Message, StatusReport
from aiosms.campaigns._import import import_messages
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import CampaignInfo, ImportResult, Row, RowState, Summary
from aiosms.campaigns._refusals import ACCOUNT_REFUSAL
from aiosms.campaigns._runner import Runner, RunOptions
from aiosms.campaigns._settings import campaign_settings, load_info, positive, window_of
from aiosms.campaigns._tracking import track as _track
from aiosms.campaigns._window import Window

if TYPE_CHECKING:
    from aiosms._client import BaseClient

__all__ = ["Campaign"]

logger = logging.getLogger("aiosms.campaigns")

DEFAULT_PACKET_SIZE = 1000
DEFAULT_CLAIM_PACKETS = 4
DEFAULT_LEASE = 60.0
_PAGE = 1000
_UNSET: Any = object()


class Campaign:
    """A durable campaign in a ``Journal``. Build it with ``create`` or ``open``.

    >>> journal = SqliteJournal("campaigns.db")  # doctest: +SKIP
    >>> campaign = await Campaign.create(journal, "spring-sale", messages)  # doctest: +SKIP
    >>> async with aiosms.MySms(...) as sms:  # doctest: +SKIP
    ...     summary = await campaign.run(sms, rate=50)
    """

    def __init__(self, journal: Journal, info: CampaignInfo) -> None:
        self.journal = journal
        self.id = info.id
        self.name = info.name
        self._settings: dict[str, Any] = dict(info.settings)
        self._runner = Runner(self)

    def __repr__(self) -> str:
        return f"Campaign({self.name!r})"

    # -- building ----------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        journal: Journal,
        name: str,
        messages: Iterable[Message] | AsyncIterable[Message] = (),
        *,
        invalid: Iterable[tuple[Any, str, str]] = (),
        sender: str | None = None,
        window: tuple[time, time] | None = None,
        tz: str | None = None,
        budget: int | None = None,
        max_parts: int | None = None,
        dedupe: bool = True,
    ) -> Campaign:
        """Create the campaign ``name`` (or open it, if it exists) and import ``messages``.

        Idempotent: each row's key is ``Message.key`` (the caller's: a CSV column, a
        line number; the position in ``messages`` when None), and a key the campaign
        has is never imported again. ``invalid`` records rows that failed validation
        as ``skipped``: ``(key, phone as given, reason)``.

        Options (kept with the campaign; those of an existing campaign stay as they
        are): ``sender`` for messages without one; ``window=(time(9), time(21))``, the
        hours rows may be claimed, in ``tz`` (a zoneinfo name; Moscow, fixed UTC+3, by
        default); ``budget``, the most SMS parts the campaign may spend; ``max_parts``,
        the most parts one message may take (longer ones are skipped); ``dedupe``,
        skip rows whose number the campaign already has.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name", "must be a non-empty string")
        settings = campaign_settings(
            sender=sender, window=window, tz=tz, budget=budget, max_parts=max_parts, dedupe=dedupe
        )
        campaign = cls(journal, await journal.create_campaign(name, settings))
        await campaign.add(messages, invalid=invalid)
        return campaign

    @classmethod
    async def open(cls, journal: Journal, name: str) -> Campaign:
        """The existing campaign ``name``; ``LookupError`` if there is none."""
        info = await journal.get_campaign(name)
        if info is None:
            raise LookupError(f"no campaign named {name!r} in {journal!r}")
        return cls(journal, info)

    @property
    def settings(self) -> Mapping[str, Any]:
        """The campaign's options as stored: sender, window, tz, budget, max_parts, dedupe."""
        return dict(self._settings)

    @property
    def window(self) -> Window | None:
        """The send window of the campaign's settings, if it has one."""
        return window_of(self._settings)

    async def add(
        self,
        messages: Iterable[Message] | AsyncIterable[Message] = (),
        *,
        invalid: Iterable[tuple[Any, str, str]] = (),
    ) -> ImportResult:
        """Import more rows (idempotent on their keys; see ``create``)."""
        return await import_messages(self.journal, self.id, self._settings, messages, invalid)

    # -- state -------------------------------------------------------------------------

    async def _info(self) -> CampaignInfo:
        info = await load_info(self.journal, self.name)
        self._settings = dict(info.settings)
        return info

    async def counts(self) -> dict[str, int]:
        """Rows per state, every state present (zeros included)."""
        return await self.journal.counts(self.id)

    async def pause(self, reason: str = "paused by the user") -> None:
        """Stop claiming: a running ``run()`` sends nothing more and returns paused."""
        await self.journal.set_campaign_state(self.id, "paused", reason)
        logger.warning("campaign %r paused: %s", self.name, reason)

    async def resume(self, *, budget: int | None = _UNSET) -> int:
        """Let the campaign run again (after the cause of a pause is fixed).

        Rows refused for an account-level reason (authentication, blocked account,
        funds) go back to ``pending``: the gateway certainly did not send them.
        ``budget`` replaces the budget in parts (None: no budget). Returns the rows
        put back in line.
        """
        settings = None
        if budget is not _UNSET:
            positive(budget, "budget")
            settings = {**self._settings, "budget": budget}
            self._settings = settings
        requeued = await self.journal.requeue(self.id, "rejected", reason=ACCOUNT_REFUSAL)
        await self.journal.set_campaign_state(self.id, "active", None, settings=settings)
        logger.info("campaign %r resumed (%d refused row(s) back in line)", self.name, requeued)
        return requeued

    def interrupt(self, reason: str = "interrupted") -> None:
        """Make this object's running ``run()`` stop soon, cleanly, without a journal write.

        Nothing more is claimed or sent; packets already on the wire finish and their
        outcomes are stored; claimed rows go back to ``pending``. ``run()`` then returns
        a summary with ``state == "interrupted"``. Safe to call from a signal handler's
        task; the next ``run()`` starts afresh.
        """
        self._runner.interrupt(reason)

    async def requeue(self, state: str = "unknown", *, accept_duplicates: bool = False) -> int:
        """Put rows of ``state`` back to ``pending`` to be sent again; returns how many.

        ``unknown`` rows may have been delivered already and ``accepted`` ones were:
        requeueing them can send an SMS twice, so it is refused unless
        ``accept_duplicates=True`` (and logged). ``rejected`` and ``skipped`` rows were
        certainly not sent. ``pending``, ``claimed`` and ``sending`` cannot be requeued.
        """
        state = RowState(state).value
        if state in ("pending", "claimed", "sending"):
            raise ValidationError("state", f"{state} rows cannot be requeued")
        risky = state in ("unknown", "accepted")
        if risky and accept_duplicates is not True:
            raise ValidationError(
                "accept_duplicates",
                f"must be True to requeue {state} rows: they may have been sent, and "
                "sending them again may deliver an SMS twice",
            )
        count = await self.journal.requeue(self.id, state)
        log = logger.warning if risky else logger.info
        log("campaign %r: %d %s row(s) requeued to pending", self.name, count, state)
        return count

    async def summary(self, *, sent: int = 0, stopped: tuple[str, str] | None = None) -> Summary:
        """Where the campaign stands: state, counts, parts and cost of accepted rows."""
        info = await self._info()
        counts = await self.journal.counts(self.id)
        parts, cost = await self.journal.totals(self.id)
        state, reason = _standing(info, counts, stopped)
        return Summary(
            self.name, state, reason, counts, parts, None if cost is None else Decimal(cost), sent
        )

    async def export(self, state: str | RowState | None = None) -> AsyncIterator[Row]:
        """Every row of ``state`` (every row when None), in import order, page by page."""
        wanted = None if state is None else RowState(state).value
        after = 0
        while True:
            page = await self.journal.rows(self.id, state=wanted, after=after, limit=_PAGE)
            for row in page:
                yield row
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def results(self) -> AsyncIterator[Row]:
        """Every row with its final state, for a report (``export()`` of all states)."""
        return self.export(None)

    # -- sending -----------------------------------------------------------------------

    async def run(
        self,
        client: BaseClient,
        *,
        max_concurrency: int | None = None,
        rate: float | None = None,
        packet_size: int = DEFAULT_PACKET_SIZE,
        claim_packets: int = DEFAULT_CLAIM_PACKETS,
        lease: float = DEFAULT_LEASE,
        linger: float = 0.05,
        wait_for_window: bool = False,
        wait_for_others: bool = False,
    ) -> Summary:
        """Send what is pending; resumes where the last run stopped.

        At start-up, rows a lost worker left ``sending`` become ``unknown`` (it died
        while sending: they may have gone out) and its ``claimed`` rows go back to
        ``pending`` (see ``Journal.recover``: on PostgreSQL, workers still beating on
        other machines are not lost). Rows are claimed ``claim_packets`` packets at a
        time and fed to a ``Batcher`` (packets of ``packet_size``, ``max_concurrency``
        requests in flight); each packet is marked ``sending`` and committed before
        its request leaves, and its outcomes are stored when it returns.

        ``rate`` (messages/s) is the campaign's, shared by every worker running it:
        each takes ``rate / live workers``, recounted at each claim and heartbeat.
        ``lease`` is how long claimed rows stay this worker's without a heartbeat
        (beats come every ``lease / 3``); on PostgreSQL it is also how long a silent
        worker is thought alive.

        Returns a ``Summary``: ``done``; ``paused`` after an account-level refusal,
        the budget, or ``pause()`` (nothing claimed is sent after it; ``resume()``
        goes on), or when the client refused a message before any request (a
        configuration fault, such as no sender for my-sms: the reason names it, the
        rows go back to ``pending``); ``window`` when the send window closes (or is
        closed) — ``wait_for_window=True`` sleeps until it opens instead;
        ``interrupted`` after ``interrupt()``; ``incomplete`` when nothing is left to
        claim but other workers still hold rows — ``wait_for_others=True`` waits for
        them instead (checking every second: they settle, or their lease lapses and
        the rows come back here), so that the run ends ``done``.
        """
        options = RunOptions(
            max_concurrency, rate, packet_size, claim_packets, lease, linger,
            wait_for_window, wait_for_others,
        )  # fmt: skip
        return await self._runner.run(client, options)

    def track(
        self,
        client: BaseClient,
        *,
        interval: float = 5.0,
        max_interval: float = 60.0,
        deadline: float | None = 3600.0,
        page_size: int = _PAGE,
    ) -> AsyncIterator[StatusReport]:
        """Poll the delivery states of accepted messages and store them; yield each change.

        Asks ``client.status_many`` a page of ids at a time, every ``interval``
        seconds, backing off by half again up to ``max_interval`` while nothing
        changes, until every accepted message is final or ``deadline`` seconds pass.
        """
        return _track(
            self.journal, self.id, client,
            interval=interval, max_interval=max_interval, deadline=deadline, page_size=page_size,
        )  # fmt: skip


def _standing(
    info: CampaignInfo, counts: Mapping[str, int], stopped: tuple[str, str] | None
) -> tuple[str, str | None]:
    """A summary's state and reason: a stored pause first, then why a run stopped, then
    whether rows are left."""
    if info.state == "paused":
        return "paused", info.reason
    if stopped is not None:
        return stopped
    if counts["pending"] + counts["claimed"] + counts["sending"] == 0:
        return "done", None
    return "incomplete", None
