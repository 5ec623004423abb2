"""A packet of messages and where each message's receipt goes.

A packet ends once, with ``done(receipts)`` (one receipt per message, in order) or
``fail(error)`` (each message its own copy of the error); either hands every receipt
to its sink, gives the messages' places back and wakes whoever waits for the packet.
Nothing here sends or decides: that is the sender's and the accumulator's job.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from aiosms._batching._primitives import Window
from aiosms._errors import SmsError
from aiosms._models import Message, Receipt, mask_phone
from aiosms._outcomes import fail_each

__all__ = ["Collector", "Outlet", "Packet", "Waiter"]

logger = logging.getLogger("aiosms.batcher")


class Collector:
    """Where one ``send_all`` call's receipts gather until its consumer takes them."""

    __slots__ = ("abandoned", "error", "exhausted", "ready", "receipts", "window")

    def __init__(self, max_pending: int) -> None:
        self.receipts: deque[Receipt] = deque()
        self.ready = anyio.Event()
        self.window = Window(max_pending)
        #: The source has no more messages (or stopped with ``error``).
        self.exhausted = False
        #: The consumer left: what is not yet sent is withdrawn.
        self.abandoned = False
        self.error: BaseException | None = None

    def wake(self) -> None:
        """Tell the consumer there is something to look at."""
        if not self.ready.is_set():
            self.ready.set()


class Waiter:
    """Where one ``send()`` call's receipt goes."""

    __slots__ = ("gone", "receipt")

    def __init__(self) -> None:
        self.receipt: Receipt | None = None
        #: The caller stopped waiting after the message was sealed in a packet.
        self.gone = False


class Outlet:
    """What every packet of one Batcher shares: the places it gives back, and where
    receipts nobody waits for any more go (``on_receipt``, or the log)."""

    __slots__ = ("on_receipt", "pending")

    def __init__(self, pending: Window, on_receipt: Callable[[Receipt], None] | None) -> None:
        self.pending = pending
        self.on_receipt = on_receipt

    def orphan(self, receipt: Receipt) -> None:
        """Hand over a receipt whose caller left."""
        if self.on_receipt is not None:
            try:
                self.on_receipt(receipt)
            except Exception:
                logger.exception("on_receipt raised")
            return
        # A warning even when accepted: an outcome nobody took in is one the caller's
        # own records will miss (a message sent, and nobody knows).
        logger.warning(
            "receipt nobody waits for: key=%r to=%s id=%s state=%s error=%r",
            receipt.message.key,
            mask_phone(receipt.message.to),
            receipt.message_id,
            receipt.state.value,
            receipt.error,
        )

    @staticmethod
    def one(collector: Collector, receipt: Receipt) -> None:
        """Give a ``send_all`` consumer the receipt of a message that never joined a packet."""
        collector.receipts.append(receipt)
        collector.wake()


class Packet:
    """Messages sent in one request, their wire forms and where each receipt goes.

    Three parallel lists rather than an object per message: a campaign's packets
    hold thousands, and each object would be one more for the garbage collector.
    """

    __slots__ = ("_done", "_outlet", "finished", "messages", "sealed", "sinks", "wires")

    def __init__(self, outlet: Outlet) -> None:
        self._outlet = outlet
        self.messages: list[Message] = []
        self.wires: list[Any] = []
        self.sinks: list[Collector | Waiter] = []
        self.sealed = False
        self.finished = False
        # Made only when a send() caller waits: send_all never needs one.
        self._done: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, message: Message, wire: Any, sink: Collector | Waiter) -> int:
        """Add a message; return how many the packet holds now."""
        self.messages.append(message)
        self.wires.append(wire)
        self.sinks.append(sink)
        return len(self.messages)

    def keep(self, kept: list[int]) -> None:
        """Keep only the messages at these positions."""
        self.messages = [self.messages[k] for k in kept]
        self.wires = [self.wires[k] for k in kept]
        self.sinks = [self.sinks[k] for k in kept]

    async def wait(self) -> None:
        """Wait until the packet has ended."""
        if self.finished:
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def finish(self) -> None:
        """End a packet left with no message (all withdrawn)."""
        self.finished = True
        if self._done is not None:
            self._done.set()

    def fail(self, error: SmsError) -> None:
        """End the packet with no answer of its own: each message gets a copy of ``error``."""
        self.done(fail_each(self.messages, error))

    def done(self, receipts: list[Receipt]) -> None:
        """End the packet: each receipt (in the packet's order) to its message's sink."""
        outlet = self._outlet
        touched: list[Collector] = []
        # A packet's messages mostly come from one send_all call: a run of one
        # caller's messages skips the checks.
        last: Collector | None = None
        for sink, receipt in zip(self.sinks, receipts, strict=True):
            if sink is last:
                last.receipts.append(receipt)
            elif type(sink) is Collector:
                if sink.abandoned:
                    outlet.orphan(receipt)
                else:
                    sink.receipts.append(receipt)
                    last = sink
                    touched.append(sink)
            else:
                assert type(sink) is Waiter
                sink.receipt = receipt
                if sink.gone:
                    outlet.orphan(receipt)
        outlet.pending.give(len(self.messages))
        # Dropped now rather than with the packet: a send() caller may keep it a while.
        self.messages, self.wires, self.sinks = [], [], []
        self.finish()
        for collector in set(touched):
            collector.wake()
