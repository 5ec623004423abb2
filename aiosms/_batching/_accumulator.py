"""The accumulator: messages in, sealed packets out.

It holds the open packet and the places of ``max_pending``; it takes messages in (from
``send`` callers and ``send_all`` feeders), seals a packet when it is full, when its
linger has passed or on demand, and puts sealed packets on the workers' queue. It
withdraws what a departed caller no longer wants and fails the open packet when the
flow stops. It never sends: the sender takes the packets from the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from aiosms._batching._packet import Collector, Outlet, Packet, Waiter
from aiosms._batching._primitives import Window
from aiosms._errors import ClosedError, SmsError, ValidationError
from aiosms._models import Message, refuse_unsendable
from aiosms._outcomes import failed, not_sent

__all__ = ["Accumulator"]


class Accumulator:
    """The open packet, the places of ``max_pending``, and the queue of sealed packets."""

    __slots__ = (
        "_closing",
        "_outlet",
        "_prepare",
        "_sealed",
        "_tg",
        "accepting",
        "departures",
        "linger",
        "max_batch_size",
        "open",
        "pending",
        "stopped",
    )

    def __init__(
        self,
        *,
        max_batch_size: int,
        linger: float,
        outlet: Outlet,
        prepare: Callable[[Message], Any],
    ) -> None:
        self.max_batch_size = max_batch_size
        self.linger = linger
        self._outlet = outlet
        self._prepare = prepare
        self.pending: Window = outlet.pending
        self.open = Packet(outlet)
        #: Why every later message fails unsent (an account-level refusal, a failed hook).
        self.stopped: SmsError | None = None
        #: False once the Batcher begins to close: a message woken then is not taken in.
        self.accepting = True
        #: send_all callers that left with messages in sealed packets, which are then
        #: dropped before their packets go (no look at all while nobody has).
        self.departures = 0
        self._tg: TaskGroup | None = None
        self._sealed: MemoryObjectSendStream[Packet] | None = None
        #: Set when the Batcher closes, so linger timers stop holding up the exit.
        self._closing = anyio.Event()

    def start(self, tg: TaskGroup, sealed: MemoryObjectSendStream[Packet]) -> None:
        """Begin: linger timers run in ``tg``; sealed packets go to ``sealed``."""
        self._tg = tg
        self._sealed = sealed

    def close(self) -> None:
        """Take nothing more in; lingering packets stop waiting for company."""
        self.accepting = False
        self._closing.set()

    def end_queue(self) -> None:
        """No more sealed packets: workers drain the queue, then stop."""
        assert self._sealed is not None
        self._sealed.close()

    # -- intake ------------------------------------------------------------------------

    def put(self, message: Message, wire: Any, waiter: Waiter) -> Packet:
        """Take a ``send()`` caller's message in (its place already taken); return its packet."""
        if not self.accepting:
            # Woken in the same instant the Batcher began to close: too late to send.
            self.pending.give()
            raise ClosedError("the Batcher is closing: nothing was sent")
        return self.add(message, wire, waiter)

    def submit_now(self, message: object, collector: Collector) -> bool:
        """Take a message in without waiting; False (nothing done) if it must wait for room.

        The common case of ``submit``, without a coroutine per message.
        """
        if (
            collector.window.held >= collector.window.limit
            or self.pending.held >= self.pending.limit
            or self.stopped is not None
            or type(message) is not Message
        ):
            return False
        try:
            wire = self._prepare(message)
        except ValidationError:
            return False
        collector.window.held += 1
        self.pending.held += 1
        # add, inlined: this runs once per message of a campaign.
        packet = self.open
        size = packet.add(message, wire, collector)
        if size >= self.max_batch_size:
            self.seal()
        elif size == 1 and self._tg is not None:
            self._tg.start_soon(self._linger, packet)
        return True

    async def submit(self, message: object, collector: Collector) -> None:
        """Take a ``send_all`` message in, waiting for room; a refusal becomes its receipt."""
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        if not collector.window.try_take():
            await collector.window.take()
        try:
            refuse_unsendable(message)
            wire = self._prepare(message)
        except ValidationError as invalid:
            # No traceback kept: millions of bad rows must not keep their frames alive.
            self._outlet.one(collector, failed(message, invalid.with_traceback(None)))
            return
        if self.stopped is not None:
            self._outlet.one(collector, failed(message, not_sent(self.stopped)))
            return
        if not self.pending.try_take():
            try:
                await self.pending.take()
            except BaseException:
                # Cancelled while waiting for room: the consumer must not wait for it.
                collector.window.give()
                raise
        if not self.accepting:
            # Woken in the same instant the Batcher began to close: too late to send.
            self.pending.give()
            closed = ClosedError("the Batcher is closing: nothing was sent")
            self._outlet.one(collector, failed(message, closed))
            raise closed
        self.add(message, wire, collector)

    def add(self, message: Message, wire: Any, sink: Collector | Waiter) -> Packet:
        """Put a message in the open packet; return that packet."""
        packet = self.open
        size = packet.add(message, wire, sink)
        if size >= self.max_batch_size:
            self.seal()
        elif size == 1 and self._tg is not None:
            self._tg.start_soon(self._linger, packet)
        return packet

    async def _linger(self, packet: Packet) -> None:
        with anyio.move_on_after(self.linger):
            await self._closing.wait()
        if packet is self.open and packet.messages:
            self.seal()

    def seal(self) -> None:
        """Close the open packet and queue it for the workers (if it holds anything)."""
        packet = self.open
        if not packet.messages:
            return
        packet.sealed = True
        self.open = Packet(self._outlet)
        assert self._sealed is not None
        try:
            self._sealed.send_nowait(packet)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            # No worker will take it any more: it was never sent.
            packet.fail(ClosedError("the Batcher closed before this message was sent"))

    # -- withdrawal --------------------------------------------------------------------

    def withdraw_waiter(self, packet: Packet, waiter: Waiter) -> None:
        """A ``send()`` caller stopped waiting: withdraw its message, or see its receipt kept."""
        if not packet.sealed:
            # Not in a packet yet: withdraw it.
            packet.keep([k for k, sink in enumerate(packet.sinks) if sink is not waiter])
            self.pending.give()
        elif waiter.receipt is not None:
            # Its receipt came in the same instant the waiting was cancelled.
            self._outlet.orphan(waiter.receipt)
        else:
            # It goes out anyway; its receipt must not vanish.
            waiter.gone = True

    def withdraw(self, collector: Collector) -> None:
        """A ``send_all`` consumer left: take its messages out of the open packet, have
        workers drop those already sealed, and hand over receipts it did not take."""
        collector.abandoned = True
        packet = self.open
        kept = [k for k, sink in enumerate(packet.sinks) if sink is not collector]
        gone = len(packet) - len(kept)
        if gone:
            packet.keep(kept)
            self.pending.give(gone)
        if collector.window.held > len(collector.receipts) + gone:
            # Some of its messages are beyond the open packet: in sealed packets, or
            # with a feeder about to add them. Workers look for them from now on (the
            # count never goes down: a look costs little next to a wrong send).
            self.departures += 1
        # Receipts that came in but were not taken: those messages were sent.
        while collector.receipts:
            self._outlet.orphan(collector.receipts.popleft())

    def drop_withdrawn(self, packet: Packet) -> None:
        """Drop from a sealed packet, before it goes, the messages of departed callers."""
        if not self.departures:
            return
        live = [
            k
            for k, sink in enumerate(packet.sinks)
            if type(sink) is not Collector or not sink.abandoned
        ]
        if len(live) != len(packet):
            # Their send_all caller left before the packet went: withdrawn, not sent.
            self.pending.give(len(packet) - len(live))
            packet.keep(live)

    # -- failure -----------------------------------------------------------------------

    def stop(self, error: SmsError) -> None:
        """Stop the flow: later messages, and those in the open packet, fail unsent."""
        if self.stopped is None:
            self.stopped = error
        self.fail_all(not_sent(error))

    def fail_all(self, error: SmsError) -> None:
        """Fail every message of the open packet with a copy of ``error``."""
        packet = self.open
        if packet.messages:
            self.open = Packet(self._outlet)
            packet.sealed = True
            packet.fail(error)
