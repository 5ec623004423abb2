"""The sender: worker tasks that take sealed packets and send each in one call.

Each worker takes a packet from the queue, waits for rate tokens, drops what was
withdrawn, asks ``before_send``, makes the packet's one call to the client, tells
``after_send``, and ends the packet with its receipts. An account-level refusal (or
a failing hook) stops the flow through the accumulator. The sender never resends an
unknown outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from aiosms._batching._accumulator import Accumulator
from aiosms._batching._packet import Packet
from aiosms._batching._primitives import TokenBucket
from aiosms._errors import ClosedError, DeliveryUnknownError, SmsError
from aiosms._models import Message, Receipt
from aiosms._outcomes import fail_each, failed, not_sent, stops_the_flow

__all__ = ["Sender"]

logger = logging.getLogger("aiosms.batcher")

SendPacket = Callable[[list[Message], list[Any]], Awaitable[list[Receipt]]]
BeforeSend = Callable[[Sequence[Message]], Awaitable[Sequence[bool]]]
AfterSend = Callable[[Sequence[Receipt]], Awaitable[None]]


class _Plan:
    """What of a packet goes: the allowed messages and their wire forms, and the
    receipts of those ``before_send`` refused, by position in the packet."""

    __slots__ = ("messages", "refused", "size", "wires")

    def __init__(
        self, packet: Packet, messages: list[Message], wires: list[Any], refused: dict[int, Receipt]
    ) -> None:
        self.size = len(packet)
        self.messages = messages
        self.wires = wires
        self.refused = refused

    def merged(self, receipts: list[Receipt]) -> list[Receipt]:
        """The packet's receipts in its own order: refused messages where they stood."""
        if not self.refused:
            return receipts
        sent = iter(receipts)
        refused = self.refused
        return [refused[k] if k in refused else next(sent) for k in range(self.size)]


class Sender:
    """Workers, the rate limit, the packet's call and its hooks, the account-level stop."""

    def __init__(
        self,
        accumulator: Accumulator,
        send_packet: SendPacket,
        *,
        before_send: BeforeSend | None,
        after_send: AfterSend | None,
    ) -> None:
        self._accumulator = accumulator
        self._send_packet = send_packet
        self._before_send = before_send
        self._after_send = after_send
        self._bucket: TokenBucket | None = None
        # Kept to fail, at exit, packets no worker took (a cancelled Batcher).
        self._leftovers: MemoryObjectReceiveStream[Packet] | None = None

    def start(
        self,
        tg: TaskGroup,
        sealed: MemoryObjectReceiveStream[Packet],
        *,
        workers: int,
        rate: float | None,
        burst: float,
    ) -> None:
        """Start ``workers`` tasks in ``tg`` taking packets from ``sealed``."""
        if rate is not None:
            self._bucket = TokenBucket(rate, burst)
        for _ in range(workers):
            tg.start_soon(self._worker, sealed.clone())
        self._leftovers = sealed

    def fail_leftovers(self, error: SmsError) -> None:
        """Fail the packets no worker took (the Batcher was cancelled), then let go."""
        leftovers = self._leftovers
        assert leftovers is not None
        while True:
            try:
                packet = leftovers.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            packet.fail(error)
        leftovers.close()

    async def _worker(self, sealed: MemoryObjectReceiveStream[Packet]) -> None:
        async with sealed:
            while True:
                # Take a waiting packet at once: receive() would first yield to every
                # other task, leaving this worker's connection idle meanwhile.
                try:
                    packet = sealed.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        packet = await sealed.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                await self.send(packet)

    async def send(self, packet: Packet) -> None:
        """Send one sealed packet and end it with its receipts."""
        if self._bucket is not None and packet.messages:
            await self._take_tokens(packet, self._bucket)
        # Checked after the wait for tokens: the packet has not left yet.
        self._accumulator.drop_withdrawn(packet)
        if not packet.messages:
            packet.finish()
            return
        stopped = self._accumulator.stopped
        if stopped is not None:
            packet.fail(not_sent(stopped))
            return
        if self._before_send is None:
            plan: _Plan | None = _Plan(packet, packet.messages, packet.wires, {})
        else:
            plan = await self._plan(packet)
        if plan is None:
            return
        if not plan.messages:
            packet.done(plan.merged([]))
            return
        receipts = await self._call(packet, plan)
        if self._accumulator.stopped is None:
            for receipt in receipts:
                refusal = receipt.error
                if stops_the_flow(refusal):
                    logger.error(
                        "every later send would be refused (%s): the Batcher stops sending",
                        refusal,
                    )
                    self._accumulator.stop(refusal)
                    break
        if self._after_send is not None:
            await self._tell_after_send(packet, plan, receipts, self._after_send)
        packet.done(plan.merged(receipts))

    async def _take_tokens(self, packet: Packet, bucket: TokenBucket) -> None:
        try:
            await bucket.take(len(packet))
        except anyio.get_cancelled_exc_class():
            # Cancelled before the packet left: certainly not sent.
            self._accumulator.drop_withdrawn(packet)
            packet.fail(ClosedError("the Batcher was cancelled before this message was sent"))
            raise

    async def _plan(self, packet: Packet) -> _Plan | None:
        """What of the packet may go; None (and the packet failed) if ``before_send`` failed."""
        messages, wires = packet.messages, packet.wires
        allowed = await self._ask_before_send(packet)
        if allowed is None:
            return None
        if all(allowed):
            return _Plan(packet, messages, wires, {})
        disallowed = SmsError("before_send did not allow this message: not sent")
        refused = {
            k: failed(m, disallowed.clone()) for k, m in enumerate(messages) if not allowed[k]
        }
        return _Plan(
            packet,
            [m for k, m in enumerate(messages) if allowed[k]],
            [w for k, w in enumerate(wires) if allowed[k]],
            refused,
        )

    async def _ask_before_send(self, packet: Packet) -> Sequence[bool] | None:
        """Which of a packet's messages may go; None (and the packet failed) if none can."""
        assert self._before_send is not None
        messages = packet.messages
        try:
            allowed = await self._before_send(messages)
            if len(allowed) != len(messages):
                raise ValueError(  # noqa: TRY301
                    f"before_send returned {len(allowed)} answers for {len(messages)} messages"
                )
        except anyio.get_cancelled_exc_class():
            packet.fail(ClosedError("the Batcher was cancelled before this message was sent"))
            raise
        except Exception as error:
            logger.exception("before_send raised: the packet is not sent, the Batcher stops")
            stop = ClosedError(f"before_send failed ({type(error).__name__}): not sent")
            self._accumulator.stop(stop)
            packet.fail(stop)
            return None
        return allowed

    async def _call(self, packet: Packet, plan: _Plan) -> list[Receipt]:
        """The packet's one request: receipts for the allowed messages, whatever happens."""
        messages = plan.messages
        try:
            stopped = self._accumulator.stopped
            if stopped is not None:
                # Stopped while before_send ran (another packet's refusal): not sent, and
                # after_send hears of it like of any outcome of what it allowed.
                raise not_sent(stopped)  # noqa: TRY301
            return await self._send_packet(messages, plan.wires)
        except anyio.get_cancelled_exc_class():
            # The Batcher itself was cancelled with this packet in flight.
            unknown = DeliveryUnknownError(
                "the Batcher was cancelled while the message(s) were in flight",
                messages=messages,
                kind="cancelled",
            )
            packet.done(plan.merged(fail_each(messages, unknown)))
            raise
        except SmsError as error:
            return fail_each(messages, error)
        except Exception as error:
            logger.exception("sending a packet failed unexpectedly")
            unknown = DeliveryUnknownError(
                f"sending failed unexpectedly ({type(error).__name__})",
                messages=messages,
                kind=type(error).__name__,
            )
            return fail_each(messages, unknown)

    async def _tell_after_send(
        self, packet: Packet, plan: _Plan, receipts: list[Receipt], after_send: AfterSend
    ) -> None:
        try:
            await after_send(receipts)
        except anyio.get_cancelled_exc_class():
            packet.done(plan.merged(receipts))
            raise
        except Exception as error:
            logger.exception("after_send raised: the Batcher stops sending")
            self._accumulator.stop(
                ClosedError(f"after_send failed ({type(error).__name__}): not sent")
            )
