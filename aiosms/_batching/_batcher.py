"""The Batcher: many callers' messages, grouped into packets, sent by a fixed set of workers.

For my-sms (POST) a packet holds up to ``max_batch_size`` messages; for 1000sms each
message is a request of its own. A packet leaves when it is full, when ``linger`` has
passed since its first message, or on ``flush()`` / exit. ``max_concurrency`` worker
tasks send packets, so at most that many requests are in flight; an optional token
bucket caps messages per second. Every message gets exactly one outcome, and all
per-message bookkeeping stays per packet where it can (one event, one adapter call,
one delivery pass per packet). The Batcher never resends an unknown outcome.

This module is the facade (options, lifecycle, the public calls); the crew runs
the tasks and stops them in order, the accumulator forms packets, the sender sends
them, a packet delivers its own receipts.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio

from aiosms import _validation as v
from aiosms._batching._accumulator import Accumulator
from aiosms._batching._crew import Crew
from aiosms._batching._feeder import Feeders
from aiosms._batching._packet import Outlet, Packet, Waiter
from aiosms._batching._primitives import Window
from aiosms._batching._sender import Sender
from aiosms._batching._track import track
from aiosms._errors import ClosedError, ValidationError
from aiosms._gateway import PacketSender
from aiosms._models import Message, Receipt, StatusReport, refuse_unsendable
from aiosms._outcomes import not_sent

__all__ = [
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_PENDING",
    "Batcher",
    "hand_over_unclaimed",
]

Row = TypeVar("Row")

DEFAULT_MAX_BATCH_SIZE = 100
DEFAULT_LINGER = 0.02
DEFAULT_MAX_PENDING = 10_000


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_MAKE_RULE = "a plain function from a row to an aiosms.Message"


def _check_plain(function: object, field: str, rule: str) -> None:
    """Refuse a coroutine function where a plain function is called and never awaited."""
    if function is not None and (
        inspect.iscoroutinefunction(function)
        or inspect.iscoroutinefunction(getattr(function, "__call__", None))  # noqa: B004
    ):
        raise ValidationError(field, f"must be {rule}")


def _positive_rate(rate: object, field: str) -> float:
    return v.positive_number(rate, field, " of messages per second")


def _limits(
    client: PacketSender, max_batch_size: int, max_concurrency: int | None
) -> tuple[int, int]:
    """The packet size and worker count the client allows."""
    limit = client._batch_limit
    size = max_batch_size if limit is None else min(max_batch_size, limit)
    # No more workers than the client's pool has connections: extra ones would only
    # queue for a connection (and httpx's pool slows down as it grows).
    wanted = max_concurrency or client.max_concurrency
    return size, min(wanted, client._connection_limit or wanted)


class Batcher:
    """Groups messages from any number of tasks into packets and sends them concurrently.

    >>> async with aiosms.MySms(username="u", password="p", sender="Shop") as sms:  # doctest: +SKIP
    ...     async with aiosms.Batcher(sms, max_batch_size=500, linger=0.05) as batcher:
    ...         async for receipt in batcher.send_all(messages):
    ...             ...

    - ``max_batch_size``: messages per my-sms POST packet (1000sms sends one per request).
      A lost reply makes its whole packet unknown, so the default (100) is modest.
    - ``linger``: seconds a packet waits for company after its first message.
    - ``max_concurrency``: requests in flight (default: the client's).
    - ``max_pending``: messages held at once; beyond it, ``send`` and ``send_all`` wait,
      first come, first served.
    - ``rate``: at most this many messages per second (a packet waits for tokens for all
      its messages; bursts are at most one packet).
    - ``on_receipt``: called with each receipt nobody is waiting for any more (a cancelled
      ``send`` whose message had already left, or ``send_all`` abandoned mid-way); without
      it such receipts are logged on the ``aiosms.batcher`` logger.
    - ``before_send``: awaited by the worker with a packet's messages right before its
      request (after the rate limiter); returns one bool per message saying whether it
      may go. An outbox records its intent here ("sending", committed) and fences off
      messages it no longer owns. A message not allowed is never sent: its receipt is
      REJECTED with an error saying so. If the hook raises, nothing of the packet is
      sent and the Batcher stops sending (later messages fail as not sent).
    - ``after_send``: awaited with the receipts of the messages ``before_send`` allowed
      (all of them without it), once the request returned and before they reach their
      callers (an outbox records the outcomes here). If it raises, the receipts are
      still delivered, and the Batcher stops sending.

    Cancellation: cancelling ``send()`` before its message is in a sealed packet withdraws
    it; after that the message goes out and only the waiting stops. Leaving the context
    flushes and waits for what is in flight; if the Batcher itself is cancelled, messages
    in flight become unknown outcomes and queued ones fail as not sent. After an
    authentication, blocked-account or insufficient-funds refusal, or an HTTP 401, 403,
    404 or 405 to a send, the Batcher stops sending: queued and later messages fail with
    that error, as not sent.
    """

    def __init__(
        self,
        client: PacketSender,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        linger: float = DEFAULT_LINGER,
        max_concurrency: int | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        rate: float | None = None,
        on_receipt: Callable[[Receipt], None] | None = None,
        before_send: Callable[[Sequence[Message]], Awaitable[Sequence[bool]]] | None = None,
        after_send: Callable[[Sequence[Receipt]], Awaitable[None]] | None = None,
    ) -> None:
        max_batch_size = v.positive_int(max_batch_size, "max_batch_size")
        max_pending = v.positive_int(max_pending, "max_pending")
        max_concurrency = v.optional(v.positive_int, max_concurrency, "max_concurrency")
        linger = v.non_negative_number(linger, "linger")
        rate = v.optional(_positive_rate, rate, "rate")
        _check_plain(
            on_receipt, "on_receipt", "a plain function: it is called at once, never awaited"
        )
        self.client = client
        self.max_batch_size, self.max_concurrency = _limits(client, max_batch_size, max_concurrency)
        self.linger = float(linger)
        self.max_pending = max_pending
        self.rate = rate
        self.on_receipt = on_receipt
        self.before_send = before_send
        self.after_send = after_send
        self._outlet = Outlet(Window(max_pending), on_receipt)
        self._accumulator = Accumulator(
            max_batch_size=self.max_batch_size,
            linger=self.linger,
            outlet=self._outlet,
            prepare=client._prepare,
        )
        self._sender = Sender(
            self._accumulator,
            client._send_packet,
            before_send=before_send,
            after_send=after_send,
        )
        self._state = _State.UNOPENED
        self._feeders = Feeders(self._accumulator, self._outlet)
        self._crew = Crew(self._accumulator, self._sender, self._feeders)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Batcher:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a Batcher can be entered only once")
        self.client._check_runtime()
        self._state = _State.OPEN
        await self._crew.start(
            workers=self.max_concurrency,
            rate=self.rate,
            burst=max(float(self.max_batch_size), 1.0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = _State.CLOSING
        try:
            return await self._crew.stop(exc_type, exc, tb)
        finally:
            self._state = _State.CLOSED

    async def flush(self) -> None:
        """Send the open packet now, without waiting for it to fill or linger."""
        self._check_open()
        self._accumulator.seal()

    def _check_open(self) -> None:
        if self._state is _State.UNOPENED:
            raise RuntimeError("enter the Batcher first: async with Batcher(client) as batcher")
        if self._state is not _State.OPEN:
            raise ClosedError("the Batcher is closed: nothing was sent")

    @property
    def _open(self) -> Packet:
        """The packet now filling (read by tests that wait for messages to arrive)."""
        return self._accumulator.open

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: Message) -> Receipt:
        """Send one message with others; return its receipt or raise its typed error."""
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        self._check_open()
        refuse_unsendable(message)
        accumulator = self._accumulator
        wire = self.client._prepare(message)
        if accumulator.stopped is not None:
            raise not_sent(accumulator.stopped)
        waiter = Waiter()
        await accumulator.pending.take()
        packet = accumulator.put(message, wire, waiter)
        try:
            await packet.wait()
        except BaseException:
            accumulator.withdraw_waiter(packet, waiter)
            raise
        receipt = waiter.receipt
        assert receipt is not None
        if receipt.error is not None:
            raise receipt.error
        return receipt

    @overload
    def send_all(
        self, messages: Iterable[Message] | AsyncIterable[Message]
    ) -> AsyncGenerator[Receipt, None]: ...

    @overload
    def send_all(
        self, messages: Iterable[Row] | AsyncIterable[Row], *, make: Callable[[Row], Message]
    ) -> AsyncGenerator[Receipt, None]: ...

    async def send_all(
        self,
        messages: Iterable[Any] | AsyncIterable[Any],
        *,
        make: Callable[[Any], Message] | None = None,
    ) -> AsyncGenerator[Receipt, None]:
        """Send every message; yield one receipt per message as each completes.

        Takes any iterable or async iterable, of any length: at most ``max_pending``
        messages are held at once, and the source is read only as fast as receipts are
        taken. A failure is the receipt's ``error`` (state REJECTED or UNKNOWN); the
        stream never stops for one message. Breaking out withdraws what is still queued
        once the generator is closed (at once under ``contextlib.aclosing``); receipts
        of packets already in flight then go to ``on_receipt`` or the log.

        With ``make``, the source holds rows of any kind and ``make(row)`` builds each
        row's Message, here, as the row is read. A row for which ``make`` raises
        ``ValidationError`` (a malformed number, empty text) becomes a REJECTED receipt
        and the campaign goes on: the receipt's ``error.key`` and ``message.key`` are
        the key the Message was given, and ``message`` holds what it was given, masked
        in its repr and refused by every way to send. Any other exception from ``make``
        (a bug in it) ends the stream after the receipts already due, like a failing
        source; raise ``ValidationError(field, rule, key=...)`` yourself for a row you
        refuse before building its Message.
        """
        if make is not None and not callable(make):
            raise ValidationError("make", f"must be {_MAKE_RULE}")
        _check_plain(make, "make", _MAKE_RULE)
        self._check_open()
        tg = self._crew.task_group
        collector, scope = self._feeders.start(tg, messages, make, self.max_pending)
        try:
            while True:
                if collector.receipts:
                    receipt = collector.receipts.popleft()
                    collector.window.give()
                    yield receipt
                elif collector.exhausted and collector.window.held == 0:
                    if collector.error is not None:
                        raise collector.error
                    return
                else:
                    await collector.ready.wait()
                    collector.ready = anyio.Event()
        finally:
            self._feeders.leave(collector, scope)

    # -- tracking ----------------------------------------------------------------------

    def track(
        self,
        receipts_or_ids: Iterable[Receipt | str],
        *,
        interval: float = 5.0,
        max_interval: float = 60.0,
        deadline: float | None = 3600.0,
    ) -> AsyncGenerator[StatusReport, None]:
        """Poll the states of sent messages; yield each report when its state changes.

        Polls in batches (``status_many``), starting every ``interval`` seconds and
        backing off by half again up to ``max_interval`` while nothing changes. Stops
        when every message is final or ``deadline`` seconds have passed. A receipt with
        no message id cannot be tracked: it is reported at once with its own state and
        an error saying so.

        A report that says nothing about a message (state UNKNOWN with an ``error``: a
        network fault, an unreadable reply, a refusal of the request) is not yielded;
        that message is asked about again at the next poll. An account-level refusal
        (authentication, blocked account, funds) is raised instead: it would repeat
        at every poll until the deadline.
        """
        return track(
            self.client,
            receipts_or_ids,
            interval=interval,
            max_interval=max_interval,
            deadline=deadline,
        )


def hand_over_unclaimed(batcher: Batcher, receipts: Iterable[Receipt]) -> None:
    """Hand receipts nobody reads any more (a blocking ``send_all`` left early) to the
    Batcher's ``on_receipt``, or its log: the rule for a receipt whose caller left."""
    for receipt in receipts:
        batcher._outlet.orphan(receipt)
