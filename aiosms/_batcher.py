"""The Batcher: many callers' messages, grouped into packets, sent by a fixed set of workers.

For my-sms (POST) a packet holds up to ``max_batch_size`` messages; for 1000sms each
message is a request of its own. A packet leaves when it is full, when ``linger`` has
passed since its first message, or on ``flush()`` / exit. ``max_concurrency`` worker
tasks send packets, so at most that many requests are in flight; an optional token
bucket caps messages per second. Every message gets exactly one outcome, and all
per-message bookkeeping stays per packet where it can (one event, one adapter call,
one delivery pass per packet). The Batcher never resends an unknown outcome.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import OrderedDict, deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiosms import _validation as v
from aiosms._errors import (
    ClosedError,
    DeliveryUnknownError,
    SmsError,
    ValidationError,
)
from aiosms._models import (
    DeliveryState,
    Message,
    Receipt,
    StatusReport,
    mask_phone,
    refuse_unsendable,
    unsendable_from,
)
from aiosms._providers._common import failed, not_sent, require_id, stops_the_flow

if TYPE_CHECKING:
    from aiosms._client import BaseClient

__all__ = ["Batcher"]

Row = TypeVar("Row")

logger = logging.getLogger("aiosms.batcher")

DEFAULT_MAX_BATCH_SIZE = 100
DEFAULT_LINGER = 0.02
DEFAULT_MAX_PENDING = 10_000
# Messages a feeder takes from a sync source between two yields to the event loop.
_FEED_STRIDE = 256


class _Window:
    """A count of held places with a limit; waiting only when full, in FIFO order.

    Cheaper than a semaphore on the hot path: taking a free place is a plain
    increment with no checkpoint. A freed place is handed straight to the longest
    waiter (one wake-up per place, never a stampede of every waiter), so while
    anyone waits the window stays full and ``held < limit`` alone says a place is free.
    """

    __slots__ = ("_waiters", "held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        # An ordered set: first come, first served, and a cancelled waiter leaves
        # in O(1) (thousands may give up at once).
        self._waiters: OrderedDict[anyio.Event, None] = OrderedDict()

    def try_take(self) -> bool:
        """Take a place if one is free, without waiting (or yielding)."""
        if self.held < self.limit:
            self.held += 1
            return True
        return False

    async def take(self) -> None:
        if self.held < self.limit:
            self.held += 1
            return
        handed = anyio.Event()
        self._waiters[handed] = None
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                # The place came in the same instant the wait was cancelled: pass it on.
                self.give()
            else:
                del self._waiters[handed]
            raise

    def give(self, count: int = 1) -> None:
        self.held -= count
        waiters = self._waiters
        while waiters and self.held < self.limit:
            self.held += 1
            waiters.popitem(last=False)[0].set()


class _Collector:
    """Where one ``send_all`` call's receipts gather until its consumer takes them."""

    __slots__ = ("abandoned", "error", "exhausted", "ready", "receipts", "window")

    def __init__(self, max_pending: int) -> None:
        self.receipts: deque[Receipt] = deque()
        self.ready = anyio.Event()
        self.window = _Window(max_pending)
        #: The source has no more messages (or stopped with ``error``).
        self.exhausted = False
        #: The consumer left: what is not yet sent is withdrawn.
        self.abandoned = False
        self.error: BaseException | None = None

    def wake(self) -> None:
        if not self.ready.is_set():
            self.ready.set()


class _Refused:
    """A row whose ``make`` raised ``ValidationError``: it becomes a REJECTED receipt."""

    __slots__ = ("error",)

    def __init__(self, error: ValidationError) -> None:
        self.error = error


def _make(make: Callable[[Any], Message], row: Any) -> Message | _Refused:
    try:
        return make(row)
    except ValidationError as invalid:
        # No traceback kept: millions of bad rows must not keep their frames alive.
        return _Refused(invalid.with_traceback(None))


class _Waiter:
    """Where one ``send()`` call's receipt goes."""

    __slots__ = ("gone", "receipt")

    def __init__(self) -> None:
        self.receipt: Receipt | None = None
        #: The caller stopped waiting after the message was sealed in a packet.
        self.gone = False


class _Batch:
    """A packet: its messages, their wire forms and where each receipt goes.

    Three parallel lists rather than an object per message: a campaign's packets
    hold thousands, and each object would be one more for the garbage collector.
    """

    __slots__ = ("_done", "finished", "messages", "sealed", "sinks", "wires")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.wires: list[Any] = []
        self.sinks: list[_Collector | _Waiter] = []
        self.sealed = False
        self.finished = False
        # Made only when a send() caller waits: send_all never needs one.
        self._done: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, message: Message, wire: Any, sink: _Collector | _Waiter) -> int:
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
        if self.finished:
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def finish(self) -> None:
        self.finished = True
        if self._done is not None:
            self._done.set()


class _TokenBucket:
    """Messages per second on anyio's clock; holds at least one packet's worth."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = anyio.current_time()
        self._lock = anyio.Lock()

    async def take(self, count: int) -> None:
        async with self._lock:
            while True:
                now = anyio.current_time()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= count:
                    self.tokens -= count
                    return
                await anyio.sleep((count - self.tokens) / self.rate)


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
        client: BaseClient,
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
        if rate is not None:
            rate = v.positive_number(rate, "rate", " of messages per second")
        if on_receipt is not None and (
            inspect.iscoroutinefunction(on_receipt)
            or inspect.iscoroutinefunction(getattr(on_receipt, "__call__", None))  # noqa: B004
        ):
            raise ValidationError(
                "on_receipt", "must be a plain function: it is called at once, never awaited"
            )
        self.client = client
        limit = client._batch_limit
        self.max_batch_size = max_batch_size if limit is None else min(max_batch_size, limit)
        self.linger = float(linger)
        # No more workers than the client's pool has connections: extra ones would only
        # queue for a connection (and httpx's pool slows down as it grows).
        wanted = max_concurrency or client.max_concurrency
        self.max_concurrency = min(wanted, client._connection_limit or wanted)
        self.max_pending = max_pending
        self.rate = rate
        self.on_receipt = on_receipt
        self.before_send = before_send
        self.after_send = after_send
        self._bucket: _TokenBucket | None = None
        self._pending = _Window(max_pending)
        self._open = _Batch()
        self._stopped: SmsError | None = None
        self._state = "unopened"
        self._tg: TaskGroup | None = None
        self._sealed_send: MemoryObjectSendStream[_Batch] | None = None
        self._sealed_receive: MemoryObjectReceiveStream[_Batch] | None = None
        # Kept to fail, at exit, packets no worker took (a cancelled Batcher).
        self._leftovers: MemoryObjectReceiveStream[_Batch] | None = None
        self._feeders: set[anyio.CancelScope] = set()
        #: send_all callers that left with messages in sealed packets, which are then
        #: dropped before their packets go (no look at all while nobody has).
        self._departures = 0
        #: Set when the context is left, so linger timers stop holding up the exit.
        self._closing = anyio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Batcher:
        if self._state != "unopened":
            raise RuntimeError("a Batcher can be entered only once")
        self.client._check_runtime()
        self._state = "open"
        if self.rate is not None:
            self._bucket = _TokenBucket(self.rate, max(float(self.max_batch_size), 1.0))
        self._sealed_send, self._sealed_receive = anyio.create_memory_object_stream[_Batch](
            math.inf
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        for _ in range(self.max_concurrency):
            self._tg.start_soon(self._worker, self._sealed_receive.clone())
        self._leftovers = self._sealed_receive
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._sealed_send is not None
        self._state = "closing"
        self._closing.set()
        for scope in list(self._feeders):
            scope.cancel()
        cancelled = exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class())
        if cancelled:
            self._tg.cancel_scope.cancel()
        else:
            self._seal()
        # Workers drain what is sealed, then stop when the stream ends.
        self._sealed_send.close()
        try:
            if cancelled:
                return await self._tg.__aexit__(exc_type, exc, tb)
            # An error in the body still lets the workers finish what was sealed.
            await self._tg.__aexit__(None, None, None)
            return None
        finally:
            self._state = "closed"
            closed = ClosedError("the Batcher closed before this message was sent")
            self._fail_unsent(closed)
            leftovers = self._leftovers
            assert leftovers is not None
            while True:
                try:
                    batch = leftovers.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                self._deliver(batch, [failed(m, closed.clone()) for m in batch.messages])
            leftovers.close()

    async def flush(self) -> None:
        """Send the open packet now, without waiting for it to fill or linger."""
        self._check_open()
        self._seal()

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: Message) -> Receipt:
        """Send one message with others; return its receipt or raise its typed error."""
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        self._check_open()
        refuse_unsendable(message)
        wire = self.client._prepare(message)
        if self._stopped is not None:
            raise not_sent(self._stopped)
        waiter = _Waiter()
        await self._pending.take()
        if self._state != "open":
            self._pending.give()
            raise ClosedError("the Batcher is closing: nothing was sent")
        batch = self._add(message, wire, waiter)
        try:
            await batch.wait()
        except BaseException:
            if not batch.sealed:
                # Not in a packet yet: withdraw it.
                batch.keep([k for k, sink in enumerate(batch.sinks) if sink is not waiter])
                self._pending.give()
            elif waiter.receipt is not None:
                # Its receipt came in the same instant the waiting was cancelled.
                self._orphan(waiter.receipt)
            else:
                # It goes out anyway; its receipt must not vanish.
                waiter.gone = True
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
        if make is not None and (
            not callable(make)
            or inspect.iscoroutinefunction(make)
            or inspect.iscoroutinefunction(getattr(make, "__call__", None))  # noqa: B004
        ):
            raise ValidationError(
                "make", "must be a plain function from a row to an aiosms.Message"
            )
        self._check_open()
        assert self._tg is not None
        collector = _Collector(self.max_pending)
        scope = anyio.CancelScope()
        self._feeders.add(scope)
        self._tg.start_soon(self._feed, messages, collector, scope, make)
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
            scope.cancel()
            self._feeders.discard(scope)
            collector.abandoned = True
            self._withdraw(collector)
            # Receipts that came in but were not taken: those messages were sent.
            while collector.receipts:
                self._orphan(collector.receipts.popleft())

    async def _feed(
        self,
        messages: Iterable[Any] | AsyncIterable[Any],
        collector: _Collector,
        scope: anyio.CancelScope,
        make: Callable[[Any], Message] | None,
    ) -> None:
        read_to_the_end = False
        try:
            with scope:
                if isinstance(messages, AsyncIterable):
                    async with _closing(messages) as source:
                        async for item in source:
                            message: Message | _Refused = (
                                item if make is None else _make(make, item)
                            )
                            await self._submit(message, collector)
                else:
                    for count, item in enumerate(messages, 1):
                        message = item if make is None else _make(make, item)
                        if not self._submit_now(message, collector):
                            await self._submit(message, collector)
                        # A sync source never yields by itself: let the workers run now
                        # and then, but not after every message (a whole trip round the
                        # event loop per message would make the feeder the bottleneck).
                        if count % _FEED_STRIDE == 0:
                            await anyio.lowlevel.checkpoint()
                read_to_the_end = True
        except Exception as error:
            # The source's own failure is its consumer's to see, never the Batcher's:
            # raised in the Batcher's task group it would cancel every other caller.
            collector.error = error
        finally:
            if not read_to_the_end and collector.error is None:
                collector.error = ClosedError(
                    "the Batcher closed before the rest of this source was read: not sent"
                )
            collector.exhausted = True
            collector.wake()

    def _submit_now(self, message: Message | _Refused, collector: _Collector) -> bool:
        """Take a message in without waiting; False (nothing done) if it must wait for room.

        The common case of ``_submit``, without a coroutine per message.
        """
        if (
            collector.window.held >= collector.window.limit
            or self._pending.held >= self._pending.limit
            or self._stopped is not None
            or type(message) is not Message
        ):
            return False
        try:
            wire = self.client._prepare(message)
        except ValidationError:
            return False
        collector.window.held += 1
        self._pending.held += 1
        # _add, inlined: this runs once per message of a campaign.
        batch = self._open
        size = batch.add(message, wire, collector)
        if size >= self.max_batch_size:
            self._seal()
        elif size == 1 and self._tg is not None:
            self._tg.start_soon(self._linger, batch)
        return True

    async def _submit(self, message: Message | _Refused, collector: _Collector) -> None:
        if type(message) is _Refused:
            if not collector.window.try_take():
                await collector.window.take()
            refused = message.error
            self._deliver_one(collector, failed(unsendable_from(refused), refused))
            return
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        if not collector.window.try_take():
            await collector.window.take()
        try:
            refuse_unsendable(message)
            wire = self.client._prepare(message)
        except ValidationError as invalid:
            # No traceback kept: millions of bad rows must not keep their frames alive.
            receipt = failed(message, invalid.with_traceback(None))
            self._deliver_one(collector, receipt)
            return
        if self._stopped is not None:
            self._deliver_one(collector, failed(message, not_sent(self._stopped)))
            return
        if not self._pending.try_take():
            try:
                await self._pending.take()
            except BaseException:
                # Cancelled while waiting for room: the consumer must not wait for it.
                collector.window.give()
                raise
        if self._state != "open":
            # Woken in the same instant the Batcher began to close: too late to send.
            self._pending.give()
            closed = ClosedError("the Batcher is closing: nothing was sent")
            self._deliver_one(collector, failed(message, closed))
            raise closed
        self._add(message, wire, collector)

    # -- packets -----------------------------------------------------------------------

    def _add(self, message: Message, wire: Any, sink: _Collector | _Waiter) -> _Batch:
        """Put a message in the open packet; return that packet."""
        batch = self._open
        size = batch.add(message, wire, sink)
        if size >= self.max_batch_size:
            self._seal()
        elif size == 1 and self._tg is not None:
            self._tg.start_soon(self._linger, batch)
        return batch

    async def _linger(self, batch: _Batch) -> None:
        with anyio.move_on_after(self.linger):
            await self._closing.wait()
        if batch is self._open and batch.messages:
            self._seal()

    def _seal(self) -> None:
        batch = self._open
        if not batch.messages:
            return
        batch.sealed = True
        self._open = _Batch()
        assert self._sealed_send is not None
        try:
            self._sealed_send.send_nowait(batch)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            # No worker will take it any more: it was never sent.
            closed = ClosedError("the Batcher closed before this message was sent")
            self._deliver(batch, [failed(m, closed.clone()) for m in batch.messages])

    async def _worker(self, sealed: MemoryObjectReceiveStream[_Batch]) -> None:
        async with sealed:
            while True:
                # Take a waiting packet at once: receive() would first yield to every
                # other task, leaving this worker's connection idle meanwhile.
                try:
                    batch = sealed.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        batch = await sealed.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                await self._send_batch(batch)

    async def _send_batch(self, batch: _Batch) -> None:
        if self._bucket is not None and batch.messages:
            try:
                await self._bucket.take(len(batch))
            except anyio.get_cancelled_exc_class():
                # Cancelled before the packet left: certainly not sent.
                self._drop_withdrawn(batch)
                closed = ClosedError("the Batcher was cancelled before this message was sent")
                self._deliver(batch, [failed(m, closed.clone()) for m in batch.messages])
                raise
        # Checked after the wait for tokens: the packet has not left yet.
        self._drop_withdrawn(batch)
        messages = batch.messages
        if not messages:
            batch.finish()
            return
        if self._stopped is not None:
            error = not_sent(self._stopped)
            self._deliver(batch, [failed(m, error.clone()) for m in messages])
            return
        wires = batch.wires
        refused: dict[int, Receipt] = {}
        if self.before_send is not None:
            allowed = await self._ask_before_send(batch)
            if allowed is None:
                return
            if not all(allowed):
                disallowed = SmsError("before_send did not allow this message: not sent")
                refused = {
                    k: failed(m, disallowed.clone())
                    for k, m in enumerate(messages)
                    if not allowed[k]
                }
                messages = [m for k, m in enumerate(messages) if allowed[k]]
                wires = [w for k, w in enumerate(wires) if allowed[k]]

        def merged(receipts: list[Receipt]) -> list[Receipt]:
            # The packet's receipts in its own order: refused messages where they stood.
            if not refused:
                return receipts
            sent = iter(receipts)
            return [refused[k] if k in refused else next(sent) for k in range(len(batch))]

        if not messages:
            self._deliver(batch, merged([]))
            return
        try:
            if self._stopped is not None:
                # Stopped while before_send ran (another packet's refusal): not sent, and
                # after_send hears of it like of any outcome of what it allowed.
                raise not_sent(self._stopped)  # noqa: TRY301
            receipts = await self.client._send_batch(messages, wires)
        except anyio.get_cancelled_exc_class():
            # The Batcher itself was cancelled with this packet in flight.
            unknown = DeliveryUnknownError(
                "the Batcher was cancelled while the message(s) were in flight",
                messages=messages,
                kind="cancelled",
            )
            self._deliver(batch, merged([failed(m, unknown.clone()) for m in messages]))
            raise
        except SmsError as error:
            receipts = [failed(m, error.clone()) for m in messages]
        except Exception as error:
            logger.exception("sending a packet failed unexpectedly")
            unknown = DeliveryUnknownError(
                f"sending failed unexpectedly ({type(error).__name__})",
                messages=messages,
                kind=type(error).__name__,
            )
            receipts = [failed(m, unknown.clone()) for m in messages]
        if self._stopped is None:
            for receipt in receipts:
                refusal = receipt.error
                if stops_the_flow(refusal):
                    self._stop(refusal)
                    break
        if self.after_send is not None:
            try:
                await self.after_send(receipts)
            except anyio.get_cancelled_exc_class():
                self._deliver(batch, merged(receipts))
                raise
            except Exception as error:
                logger.exception("after_send raised: the Batcher stops sending")
                self._halt(ClosedError(f"after_send failed ({type(error).__name__}): not sent"))
        self._deliver(batch, merged(receipts))

    async def _ask_before_send(self, batch: _Batch) -> Sequence[bool] | None:
        """Which of a packet's messages may go; None (and the packet failed) if none can."""
        assert self.before_send is not None
        messages = batch.messages
        try:
            allowed = await self.before_send(messages)
            if len(allowed) != len(messages):
                raise ValueError(  # noqa: TRY301
                    f"before_send returned {len(allowed)} answers for {len(messages)} messages"
                )
        except anyio.get_cancelled_exc_class():
            closed = ClosedError("the Batcher was cancelled before this message was sent")
            self._deliver(batch, [failed(m, closed.clone()) for m in messages])
            raise
        except Exception as error:
            logger.exception("before_send raised: the packet is not sent, the Batcher stops")
            stop = ClosedError(f"before_send failed ({type(error).__name__}): not sent")
            self._halt(stop)
            self._deliver(batch, [failed(m, stop.clone()) for m in messages])
            return None
        return allowed

    def _halt(self, error: SmsError) -> None:
        """Stop sending because a hook failed: later messages fail with ``error``."""
        if self._stopped is None:
            self._stopped = error
        self._fail_unsent(error)

    def _drop_withdrawn(self, batch: _Batch) -> None:
        if not self._departures:
            return
        live = [
            k
            for k, sink in enumerate(batch.sinks)
            if type(sink) is not _Collector or not sink.abandoned
        ]
        if len(live) != len(batch):
            # Their send_all caller left before the packet went: withdrawn, not sent.
            self._pending.give(len(batch) - len(live))
            batch.keep(live)

    def _stop(self, error: SmsError) -> None:
        self._stopped = error
        logger.error("every later send would be refused (%s): the Batcher stops sending", error)
        # Whatever waits in the open packet will never succeed either.
        batch = self._open
        if batch.messages:
            self._open = _Batch()
            batch.sealed = True
            self._deliver(batch, [failed(m, not_sent(error)) for m in batch.messages])

    # -- outcomes ----------------------------------------------------------------------

    def _deliver(self, batch: _Batch, receipts: list[Receipt]) -> None:
        touched: list[_Collector] = []
        # A packet's messages mostly come from one send_all call: a run of one
        # caller's messages skips the checks.
        last: _Collector | None = None
        for sink, receipt in zip(batch.sinks, receipts, strict=True):
            if sink is last:
                last.receipts.append(receipt)
            elif type(sink) is _Collector:
                if sink.abandoned:
                    self._orphan(receipt)
                else:
                    sink.receipts.append(receipt)
                    last = sink
                    touched.append(sink)
            else:
                assert type(sink) is _Waiter
                sink.receipt = receipt
                if sink.gone:
                    self._orphan(receipt)
        self._pending.give(len(batch))
        # Dropped now rather than with the packet: a send() caller may keep it a while.
        batch.messages, batch.wires, batch.sinks = [], [], []
        batch.finish()
        for collector in set(touched):
            collector.wake()

    def _deliver_one(self, collector: _Collector, receipt: Receipt) -> None:
        collector.receipts.append(receipt)
        collector.wake()

    def _orphan(self, receipt: Receipt) -> None:
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

    def _withdraw(self, collector: _Collector) -> None:
        """Take a departed ``send_all`` caller's messages out of the open packet."""
        batch = self._open
        kept = [k for k, sink in enumerate(batch.sinks) if sink is not collector]
        gone = len(batch) - len(kept)
        if gone:
            batch.keep(kept)
            self._pending.give(gone)
        if collector.window.held > len(collector.receipts) + gone:
            # Some of its messages are beyond the open packet: in sealed packets, or
            # with a feeder about to add them. Workers look for them from now on (the
            # count never goes down: a look costs little next to a wrong send).
            self._departures += 1

    def _fail_unsent(self, error: SmsError) -> None:
        batch = self._open
        if batch.messages:
            self._open = _Batch()
            batch.sealed = True
            self._deliver(batch, [failed(m, error.clone()) for m in batch.messages])

    def _check_open(self) -> None:
        if self._state == "unopened":
            raise RuntimeError("enter the Batcher first: async with Batcher(client) as batcher")
        if self._state != "open":
            raise ClosedError("the Batcher is closed: nothing was sent")

    # -- tracking ----------------------------------------------------------------------

    async def track(
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
        interval = v.positive_number(interval, "interval")
        max_interval = v.positive_number(max_interval, "max_interval")
        if max_interval < interval:
            raise ValidationError("max_interval", "must not be less than interval")
        deadline = v.optional(v.positive_number, deadline, "deadline")
        known: dict[str, DeliveryState | None] = {}
        for entry in receipts_or_ids:
            if isinstance(entry, Receipt):
                if entry.message_id is None:
                    yield StatusReport(
                        "",
                        entry.state,
                        error=entry.error
                        or ValidationError("message_id", "the receipt has no id to track"),
                    )
                    continue
                known[entry.message_id] = entry.state
            else:
                known[require_id(entry)] = None
        waiting = [i for i, state in known.items() if state is None or not state.is_final]
        delay = interval
        end = anyio.current_time() + (math.inf if deadline is None else deadline)
        while waiting and anyio.current_time() < end:
            changed = False
            reports: list[StatusReport] = []
            # No yield inside the scope: a generator must not hold a cancel scope open.
            with anyio.move_on_after(end - anyio.current_time()):
                reports = await self.client.status_many(waiting)
            unanswered: SmsError | None = None
            for report in reports:
                if report.state is DeliveryState.UNKNOWN and report.error is not None:
                    if stops_the_flow(report.error):
                        raise report.error
                    unanswered = unanswered or report.error
                    continue
                if report.state != known.get(report.message_id):
                    known[report.message_id] = report.state
                    changed = True
                    yield report
            if unanswered is not None:
                logger.warning("tracking: status failed (%s); asking again", unanswered)
            waiting = [i for i in waiting if not _final(known[i])]
            if not waiting:
                return
            delay = interval if changed else min(delay * 1.5, max_interval)
            await anyio.sleep(max(0.0, min(delay, end - anyio.current_time())))


def _final(state: DeliveryState | None) -> bool:
    return state is not None and state.is_final


@asynccontextmanager
async def _closing(source: AsyncIterable[Any]) -> AsyncGenerator[AsyncIterable[Any], None]:
    """Close an async generator source when feeding stops, here and now, so its own
    ``finally`` (a cursor, a file) runs in this task, not later from the GC."""
    try:
        yield source
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
