"""A campaign: a named set of messages sent at most once each, through a journal.

``Campaign`` imports rows (idempotently), runs them through a ``Batcher`` whose
per-packet hooks write intent (``sending``) before each request and outcomes after
it, pauses on account-level refusals, and tracks delivery. It holds no SQL: every
durable step is one ``Journal`` call per claim, packet or page.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, time, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from aiosms._batching import Batcher
from aiosms._batching._primitives import TokenBucket as _TokenBucket
from aiosms._errors import (
    BlacklistedError,
    ProtocolError,
    ProviderError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import DeliveryState, Message, Receipt, StatusReport
from aiosms._validation import normalize_phone
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import (
    CampaignInfo,
    ClaimedRow,
    ImportResult,
    NewRow,
    Outcome,
    Row,
    RowState,
    Summary,
)
from aiosms.campaigns._refusals import ACCOUNT_REFUSAL, is_account_level
from aiosms.campaigns._rows import new_row
from aiosms.campaigns._window import Window

if TYPE_CHECKING:
    from aiosms._client import BaseClient

__all__ = ["Campaign"]

logger = logging.getLogger("aiosms.campaigns")

DEFAULT_PACKET_SIZE = 1000
DEFAULT_CLAIM_PACKETS = 4
DEFAULT_LEASE = 60.0
#: Seconds between looks at rows other workers hold (``run(wait_for_others=True)``).
_HELD_POLL = 1.0
_IMPORT_CHUNK = 5000
_PAGE = 1000
_UNSET: Any = object()
_NOT_SENT = (DeliveryState.REJECTED, DeliveryState.UNKNOWN)
#: ``state.value`` is a descriptor call on an enum; this runs once per message sent.
_VALUES = {state: state.value for state in DeliveryState}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _positive(value: object, field: str, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(field, "must be a positive int")


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
        self._runs: list[_Run] = []
        self._interrupted: str | None = None

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
        if window is not None and (
            len(window) != 2 or not all(isinstance(t, time) for t in window)
        ):
            raise ValidationError("window", "must be a (start, end) pair of datetime.time")
        if tz is not None:
            try:
                Window(time(0), time(0), tz)
            except Exception as error:
                raise ValidationError("tz", f"unknown time zone {tz!r}") from error
        _positive(budget, "budget")
        _positive(max_parts, "max_parts")
        settings = {
            "sender": sender,
            "window": None if window is None else [t.isoformat() for t in window],
            "tz": tz,
            "budget": budget,
            "max_parts": max_parts,
            "dedupe": bool(dedupe),
        }
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
        raw = self._settings.get("window")
        if raw is None:
            return None
        return Window(time.fromisoformat(raw[0]), time.fromisoformat(raw[1]), self._settings["tz"])

    async def add(
        self,
        messages: Iterable[Message] | AsyncIterable[Message] = (),
        *,
        invalid: Iterable[tuple[Any, str, str]] = (),
    ) -> ImportResult:
        """Import more rows (idempotent on their keys; see ``create``)."""
        sender = self._settings.get("sender")
        max_parts = self._settings.get("max_parts")
        dedupe = bool(self._settings.get("dedupe", True))
        added = skipped = 0
        rows: list[NewRow] = []

        async def flush() -> None:
            nonlocal added, skipped, rows
            if rows:
                result = await self.journal.import_rows(self.id, rows, dedupe=dedupe)
                added += result.added
                skipped += result.skipped
                rows = []

        def row(position: int, message: object) -> NewRow:
            if not isinstance(message, Message):
                raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
            key = str(position if message.key is None else message.key)
            return new_row(key, message, sender, max_parts)

        position = 0
        if isinstance(messages, AsyncIterable):
            async for message in messages:
                position += 1
                rows.append(row(position, message))
                if len(rows) >= _IMPORT_CHUNK:
                    await flush()
        else:
            for message in messages:
                position += 1
                rows.append(row(position, message))
                if len(rows) >= _IMPORT_CHUNK:
                    await flush()
        for key, phone, reason in invalid:
            try:
                number = normalize_phone(phone)
            except ValidationError:
                number = str(phone)
            rows.append(
                NewRow(str(key), number, "", None, None, None, 0, "skipped", f"invalid: {reason}")
            )
            if len(rows) >= _IMPORT_CHUNK:
                await flush()
        await flush()
        return ImportResult(added, skipped)

    # -- state -------------------------------------------------------------------------

    async def _info(self) -> CampaignInfo:
        info = await self.journal.get_campaign(self.name)
        if info is None:
            raise LookupError(f"the campaign {self.name!r} is gone from {self.journal!r}")
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
            _positive(budget, "budget")
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
        self._interrupted = reason
        for run in self._runs:
            if run.stopped is None:
                run.stopped = ("interrupted", reason)

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

    async def _held_elsewhere(self) -> bool:
        """Nothing pending, but rows claimed or sending (by other workers, or leases
        that have yet to lapse)."""
        counts = await self.journal.counts(self.id)
        return not counts["pending"] and bool(counts["claimed"] + counts["sending"])

    async def summary(self, *, sent: int = 0, stopped: tuple[str, str] | None = None) -> Summary:
        """Where the campaign stands: state, counts, parts and cost of accepted rows."""
        info = await self._info()
        counts = await self.journal.counts(self.id)
        parts, cost = await self.journal.totals(self.id)
        if info.state == "paused":
            state, reason = "paused", info.reason
        elif stopped is not None:
            state, reason = stopped
        elif counts["pending"] + counts["claimed"] + counts["sending"] == 0:
            state, reason = "done", None
        else:
            state, reason = "incomplete", None
        return Summary(
            self.name,
            state,
            reason,
            counts,
            parts,
            None if cost is None else Decimal(cost),
            sent,
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
        _positive(packet_size, "packet_size", optional=False)
        _positive(claim_packets, "claim_packets", optional=False)
        _positive(max_concurrency, "max_concurrency")
        if not isinstance(lease, (int, float)) or lease <= 0:
            raise ValidationError("lease", "must be a positive number of seconds")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0
        ):
            raise ValidationError("rate", "must be a positive number of messages per second")
        sent = 0
        self._interrupted = None
        while True:
            if self._interrupted is not None:
                return await self.summary(sent=sent, stopped=("interrupted", self._interrupted))
            info = await self._info()
            if info.state == "paused":
                return await self.summary(sent=sent)
            window = self.window
            if window is not None and not window.is_open(_now()):
                opening = window.next_opening(_now())
                if not wait_for_window:
                    return await self.summary(
                        sent=sent, stopped=("window", f"the send window opens at {opening}")
                    )
                logger.info("campaign %r waits for its send window (%s)", self.name, opening)
                await anyio.sleep(max(1.0, (opening - _now()).total_seconds()))
                continue
            run = _Run(
                self, window, lease=float(lease), claim=packet_size * claim_packets, rate=rate
            )
            self._runs.append(run)
            try:
                await run.go(
                    client,
                    max_concurrency=max_concurrency,
                    packet_size=packet_size,
                    linger=linger,
                )
            finally:
                self._runs.remove(run)
            sent += run.sent
            if run.stopped is not None and run.stopped[0] == "window" and wait_for_window:
                continue
            if run.stopped is None and wait_for_others and await self._held_elsewhere():
                await anyio.sleep(_HELD_POLL)
                continue
            return await self.summary(
                sent=sent,
                stopped=run.stopped if run.stopped and run.stopped[0] != "paused" else None,
            )

    async def track(
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
        _positive(page_size, "page_size", optional=False)
        delay = float(interval)
        end = anyio.current_time() + (float("inf") if deadline is None else deadline)
        while True:
            changed = False
            waiting = 0
            after = 0
            while True:
                page = await self.journal.tracking_page(self.id, after=after, limit=page_size)
                if not page:
                    break
                after = page[-1][0]
                reports: list[StatusReport] = []
                # No yield inside the scope: a generator must not hold a cancel scope open.
                with anyio.move_on_after(max(0.0, end - anyio.current_time())):
                    try:
                        reports = await client.status_many([m for _, m, _ in page])
                    except SmsError as error:
                        if not _passing(error):
                            raise
                        logger.warning("tracking: status failed (%s); trying again", error)
                updates: list[tuple[int, str, int | None]] = []
                fresh: list[StatusReport] = []
                for (row_id, _, known), report in zip(page, reports, strict=False):
                    if not report.state.is_final:
                        waiting += 1
                    if report.state.value != known:
                        updates.append((row_id, report.state.value, report.code))
                        fresh.append(report)
                waiting += len(page) - len(reports)
                if updates:
                    await self.journal.store_delivery(self.id, updates)
                    changed = True
                for report in fresh:
                    yield report
                if len(page) < page_size:
                    break
            if waiting == 0 or anyio.current_time() >= end:
                return
            delay = float(interval) if changed else min(delay * 1.5, max_interval)
            await anyio.sleep(max(0.0, min(delay, end - anyio.current_time())))


def _passing(error: SmsError) -> bool:
    """A fault worth another look (the next poll may get through)."""
    return isinstance(error, (TransportError, ProtocolError)) or (
        isinstance(error, ProviderError) and error.transient
    )


class _Run:
    """One pass of ``Campaign.run``: an owner, its claims, the Batcher's hooks."""

    def __init__(
        self,
        campaign: Campaign,
        window: Window | None,
        *,
        lease: float,
        claim: int,
        rate: float | None,
    ):
        self.campaign = campaign
        self.journal = campaign.journal
        self.id = campaign.id
        self.window = window
        self.lease = lease
        self.claim_size = claim
        budget = campaign.settings.get("budget")
        self.budget: int | None = budget
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        #: ("paused" | "window" | "interrupted", reason) once the run must send nothing more.
        self.stopped: tuple[str, str] | None = None
        self.sent = 0
        self.budget_reached = False
        #: Why the Batcher failed a message before ``before_send`` saw it, if it did.
        self.refused: str | None = None
        #: Claimed rows not yet seen by ``before_send``: row id → (epoch, its message).
        self._epochs: dict[int, tuple[int, Message]] = {}
        self.rate = rate
        #: The campaign's rate split among live workers (None: no rate).
        self._bucket: _TokenBucket | None = None
        #: A packet's attempt id, by the row id of its first message sent.
        self._attempts: dict[int, str] = {}

    async def go(
        self,
        client: BaseClient,
        *,
        max_concurrency: int | None,
        packet_size: int,
        linger: float,
    ) -> None:
        _, released = await self.journal.recover(self.id)
        if released:
            logger.info("campaign %r: %d claimed row(s) back to pending", self.campaign.name,
                        released)  # fmt: skip
        await self.journal.heartbeat(self.id, self.owner, self.lease)
        if self.rate is not None:
            # The Batcher's own limiter is fixed for its life; this one follows the
            # number of live workers. It holds a packet before its `sending` commit.
            self._bucket = _TokenBucket(self.rate, float(packet_size))
            await self._share_rate()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeats)
                async with (
                    Batcher(
                        client,
                        max_batch_size=packet_size,
                        linger=linger,
                        max_concurrency=max_concurrency,
                        # Claimed rows wait here; a bound keeps them few and their leases short.
                        max_pending=max(2 * self.claim_size, packet_size),
                        before_send=self._before_send,
                        after_send=self._after_send,
                    ) as batcher,
                    anyio.create_task_group() as feeders,
                ):
                    # One send_all per claim, over a plain list (the Batcher's fast path),
                    # and at most two claims in the Batcher at once.
                    room = anyio.Semaphore(2)
                    while True:
                        await room.acquire()
                        messages = await self._claim()
                        if not messages:
                            room.release()
                            break
                        feeders.start_soon(self._drain, batcher, messages, room)
                tg.cancel_scope.cancel()
            if self.refused is not None and self.stopped is None:
                # Refused before `before_send`: no packet of this client can be sent
                # (a missing sender, say). Claiming on would walk the whole campaign.
                reason = f"refused before sending: {self.refused}"
                await self.journal.set_campaign_state(self.id, "paused", reason)
                self.stopped = ("paused", reason)
                logger.error("campaign %r paused: %s", self.campaign.name, reason)
            if self.budget_reached and self.stopped is None:
                reason = f"the budget of {self.budget} SMS parts is reached"
                await self.journal.set_campaign_state(self.id, "paused", reason)
                self.stopped = ("paused", reason)
                logger.warning("campaign %r paused: %s", self.campaign.name, reason)
        finally:
            with anyio.CancelScope(shield=True):
                await self.journal.release(self.id, self.owner)

    async def _heartbeats(self) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            info = await self.journal.heartbeat(self.id, self.owner, self.lease)
            if info.state == "paused" and self.stopped is None:
                self.stopped = ("paused", info.reason or "paused")
            await self._share_rate()

    async def _share_rate(self) -> None:
        if self._bucket is not None and self.rate is not None:
            live = await self.journal.live_workers(self.id)
            self._bucket.rate = self.rate / max(1, live)

    def _window_closed(self) -> bool:
        if self.window is None or self.window.is_open(_now()):
            return False
        if self.stopped is None:
            opening = self.window.next_opening(_now())
            self.stopped = ("window", f"the send window closed; it opens at {opening}")
        return True

    async def _claim(self) -> list[Message]:
        """The next claim's rows as messages; empty when nothing more may be claimed."""
        if (
            self.stopped is not None
            or self.refused is not None
            or self.budget_reached
            or self._window_closed()
        ):
            return []
        await self._share_rate()
        claim = await self.journal.claim(
            self.id, self.owner, self.claim_size, self.lease, self.budget
        )
        if claim.budget_exhausted:
            # What is claimed fits the budget and still goes; the pause comes after.
            self.budget_reached = True
        epoch = claim.epoch
        epochs = self._epochs
        messages = []
        for row in claim.rows:
            message = _message(row)
            epochs[row.id] = (epoch, message)
            messages.append(message)
        return messages

    async def _drain(
        self, batcher: Batcher, messages: list[Message], room: anyio.Semaphore
    ) -> None:
        epochs = self._epochs
        try:
            stream = batcher.send_all(messages)
            async with contextlib.aclosing(stream):
                async for receipt in stream:
                    # `before_send` takes each row's epoch: a failed receipt whose row
                    # still has one never reached it (nor the wire). The row stays
                    # claimed, and goes back to pending when the run ends.
                    error = receipt.error
                    if error is None:
                        continue
                    # The same message object: a row claimed again since has a new one.
                    entry = epochs.get(receipt.message.key)
                    if entry is None or entry[1] is not receipt.message:
                        continue
                    del epochs[receipt.message.key]
                    if self.refused is None and self.stopped is None:
                        self.refused = f"{type(error).__name__}: {error}"
        finally:
            room.release()

    async def _before_send(self, messages: Sequence[Message]) -> list[bool]:
        epochs = self._epochs
        pairs = [(m.key, epochs.pop(m.key, _NO_EPOCH)[0]) for m in messages]
        if self._bucket is not None and self.stopped is None:
            await self._bucket.take(len(messages))
        if self.stopped is not None or self._window_closed():
            return [False] * len(messages)
        attempt = uuid.uuid4().hex
        changed = await self.journal.begin_send(self.id, self.owner, pairs, attempt)
        if len(changed) != len(messages):
            logger.warning(
                "campaign %r: %d of %d row(s) of a packet are no longer this worker's "
                "(lease expired, claimed again, or the campaign paused): not sent",
                self.campaign.name,
                len(messages) - len(changed),
                len(messages),
            )
        if len(changed) == len(messages):
            # The usual case: the whole packet is still this worker's.
            allowed = [True] * len(messages)
            self._attempts[messages[0].key] = attempt
        else:
            allowed = [m.key in changed for m in messages]
            if changed:
                first = next(m.key for m in messages if m.key in changed)
                self._attempts[first] = attempt
        self.sent += len(changed)
        return allowed

    async def _after_send(self, receipts: Sequence[Receipt]) -> None:
        attempt = self._attempts.pop(receipts[0].message.key)
        outcomes: list[Outcome] = []
        stop_list: list[tuple[str, str]] = []
        pause: str | None = None
        for receipt in receipts:
            outcome, refusal = _outcome(receipt)
            outcomes.append(outcome)
            if receipt.error is None:
                continue
            if refusal is not None and pause is None:
                pause = refusal
            if isinstance(receipt.error, BlacklistedError):
                stop_list.append(
                    (receipt.message.to, f"blacklisted by the gateway: {receipt.error}")
                )
        await self.journal.finish(self.id, attempt, outcomes, stop_list=stop_list, pause=pause)
        if pause is not None:
            self.stopped = ("paused", pause)
            logger.error("campaign %r paused: %s", self.campaign.name, pause)


#: A row this run has no claim for: its fenced update changes nothing.
_NO_EPOCH: tuple[int, Any] = (-1, None)
_new = object.__new__
_set = object.__setattr__


def _message(row: ClaimedRow) -> Message:
    """The row as a Message keyed by its row id.

    Built without running the converters again: every field was a checked
    ``Message`` field when it was imported, and this runs once per message sent.
    """
    message = _new(Message)
    _set(message, "to", row.phone)
    _set(message, "text", row.text)
    _set(message, "sender", row.sender)
    _set(message, "at", None if row.at is None else datetime.fromisoformat(row.at))
    _set(message, "ttl", row.ttl)
    _set(message, "key", row.id)
    return message


def _outcome(receipt: Receipt) -> tuple[Outcome, str | None]:
    """The row's outcome, and the pause reason if the refusal concerns the account."""
    row_id: int = receipt.message.key
    error = receipt.error
    if error is None and receipt.state not in _NOT_SENT:
        cost = None if receipt.cost is None else str(receipt.cost)
        outcome = Outcome(
            row_id, "accepted", receipt.message_id, receipt.parts, cost, None, None, None,
            _VALUES[receipt.state],
        )  # fmt: skip
        return outcome, None
    name = None if error is None else type(error).__name__
    code = getattr(error, "code", None)
    text = None if error is None else str(error)
    if receipt.state is DeliveryState.REJECTED:
        refusal = error is not None and is_account_level(error)
        outcome = Outcome(
            row_id, "rejected", None, receipt.parts, None, name, code, text, None,
            ACCOUNT_REFUSAL if refusal else None,
        )  # fmt: skip
        return outcome, (f"{name}: {text}" if refusal else None)
    outcome = Outcome(
        row_id, "unknown", receipt.message_id, receipt.parts, None, name, code, text, None,
        "the outcome of the request is unknown: it may have been sent",
    )  # fmt: skip
    return outcome, None
