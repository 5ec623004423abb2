"""One pass of ``Campaign.run``: an owner, its claims fed to a Batcher, the packet hooks.

The pass recovers what a lost worker left, claims rows a few packets at a time while
nothing stops it (a pause, the window, the budget, an interrupt, a refusal before
sending), feeds each claim to the Batcher, and writes the journal around each
packet: ``sending`` committed (fenced) before its request, outcomes after it. It
returns nothing: what stopped it is in ``stopped``; the caller decides what next.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio

from aiosms._batching import Batcher
from aiosms._batching._primitives import TokenBucket as _TokenBucket
from aiosms._errors import BlacklistedError
from aiosms._models import Message, Receipt
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import Outcome
from aiosms.campaigns._packets import message_of, outcome_of
from aiosms.campaigns._window import Window

if TYPE_CHECKING:
    from aiosms._client import BaseClient

__all__ = ["Run", "now"]

logger = logging.getLogger("aiosms.campaigns")

#: A row this run has no claim for: its fenced update changes nothing.
_NO_EPOCH: tuple[int, Any] = (-1, None)


def now() -> datetime:
    """The time the send window is checked against."""
    return datetime.now(timezone.utc)


class Run:
    """One pass of ``Campaign.run``: an owner, its claims, the Batcher's hooks."""

    def __init__(
        self,
        journal: Journal,
        campaign_id: int,
        name: str,
        *,
        window: Window | None,
        budget: int | None,
        lease: float,
        claim: int,
        rate: float | None,
    ):
        self.journal = journal
        self.id = campaign_id
        self.name = name
        self.window = window
        self.lease = lease
        self.claim_size = claim
        self.budget = budget
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
        """Recover, then claim and send until nothing more may be claimed; the claims
        left are released on the way out, whatever happens."""
        _, released = await self.journal.recover(self.id)
        if released:
            logger.info("campaign %r: %d claimed row(s) back to pending", self.name, released)
        await self.journal.heartbeat(self.id, self.owner, self.lease)
        if self.rate is not None:
            # The Batcher's own limiter is fixed for its life; this one follows the
            # number of live workers. It holds a packet before its `sending` commit.
            self._bucket = _TokenBucket(self.rate, float(packet_size))
            await self._share_rate()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeats)
                await self._send_claims(client, max_concurrency, packet_size, linger)
                tg.cancel_scope.cancel()
            await self._pause_if_stuck()
        finally:
            with anyio.CancelScope(shield=True):
                await self.journal.release(self.id, self.owner)

    async def _send_claims(
        self, client: BaseClient, max_concurrency: int | None, packet_size: int, linger: float
    ) -> None:
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

    async def _pause_if_stuck(self) -> None:
        """Pause the campaign when this pass ended for a reason no other pass would
        escape: a refusal before sending, or the budget."""
        if self.refused is not None and self.stopped is None:
            # Refused before `before_send`: no packet of this client can be sent
            # (a missing sender, say). Claiming on would walk the whole campaign.
            reason = f"refused before sending: {self.refused}"
            await self.journal.set_campaign_state(self.id, "paused", reason)
            self.stopped = ("paused", reason)
            logger.error("campaign %r paused: %s", self.name, reason)
        if self.budget_reached and self.stopped is None:
            reason = f"the budget of {self.budget} SMS parts is reached"
            await self.journal.set_campaign_state(self.id, "paused", reason)
            self.stopped = ("paused", reason)
            logger.warning("campaign %r paused: %s", self.name, reason)

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
        if self.window is None or self.window.is_open(now()):
            return False
        if self.stopped is None:
            opening = self.window.next_opening(now())
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
            message = message_of(row)
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
                self.name,
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
            outcome, refusal = outcome_of(receipt)
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
            logger.error("campaign %r paused: %s", self.name, pause)
