"""A ``send_all`` source read into the accumulator, in a task of the Batcher's own.

The feeder reads rows or messages (sync or async source), builds messages with the
caller's ``make``, and hands them to the accumulator as fast as the consumer's window
and ``max_pending`` allow. The source's own failure is recorded for the consumer; it
never reaches the Batcher's task group.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from aiosms._batching._accumulator import Accumulator
from aiosms._batching._packet import Collector, Outlet
from aiosms._errors import ClosedError, ValidationError
from aiosms._models import Message, unsendable_from
from aiosms._outcomes import failed

__all__ = ["Feeders"]

# Messages a feeder takes from a sync source between two yields to the event loop.
_FEED_STRIDE = 256


class Feeders:
    """The ``send_all`` sources being read, each in a task of the Batcher's own group."""

    __slots__ = ("_accumulator", "_outlet", "_scopes")

    def __init__(self, accumulator: Accumulator, outlet: Outlet) -> None:
        self._accumulator = accumulator
        self._outlet = outlet
        self._scopes: set[anyio.CancelScope] = set()

    def start(
        self,
        tg: TaskGroup,
        messages: Iterable[Any] | AsyncIterable[Any],
        make: Callable[[Any], Message] | None,
        max_pending: int,
    ) -> tuple[Collector, anyio.CancelScope]:
        """Start reading a source; its receipts gather in the returned collector."""
        collector = Collector(max_pending)
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        tg.start_soon(_feed, self._accumulator, self._outlet, messages, collector, scope, make)
        return collector, scope

    def leave(self, collector: Collector, scope: anyio.CancelScope) -> None:
        """The consumer left: stop reading, withdraw what has not gone."""
        scope.cancel()
        self._scopes.discard(scope)
        self._accumulator.withdraw(collector)

    def cancel_all(self) -> None:
        """Stop reading every source (the Batcher is closing)."""
        for scope in list(self._scopes):
            scope.cancel()


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


async def _feed(
    accumulator: Accumulator,
    outlet: Outlet,
    messages: Iterable[Any] | AsyncIterable[Any],
    collector: Collector,
    scope: anyio.CancelScope,
    make: Callable[[Any], Message] | None,
) -> None:
    """Read the whole source into the accumulator (until ``scope`` is cancelled)."""
    read_to_the_end = False
    try:
        with scope:
            if isinstance(messages, AsyncIterable):
                await _feed_async(accumulator, outlet, messages, collector, make)
            else:
                await _feed_sync(accumulator, outlet, messages, collector, make)
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


async def _feed_async(
    accumulator: Accumulator,
    outlet: Outlet,
    messages: AsyncIterable[Any],
    collector: Collector,
    make: Callable[[Any], Message] | None,
) -> None:
    async with _closing(messages) as source:
        async for item in source:
            message: Message | _Refused = item if make is None else _make(make, item)
            await _submit(accumulator, outlet, message, collector)


async def _feed_sync(
    accumulator: Accumulator,
    outlet: Outlet,
    messages: Iterable[Any],
    collector: Collector,
    make: Callable[[Any], Message] | None,
) -> None:
    for count, item in enumerate(messages, 1):
        message = item if make is None else _make(make, item)
        if not accumulator.submit_now(message, collector):
            await _submit(accumulator, outlet, message, collector)
        # A sync source never yields by itself: let the workers run now and then,
        # but not after every message (a whole trip round the event loop per message
        # would make the feeder the bottleneck).
        if count % _FEED_STRIDE == 0:
            await anyio.lowlevel.checkpoint()


async def _submit(
    accumulator: Accumulator, outlet: Outlet, message: Message | _Refused, collector: Collector
) -> None:
    if type(message) is _Refused:
        if not collector.window.try_take():
            await collector.window.take()
        refused = message.error
        outlet.one(collector, failed(unsendable_from(refused), refused))
        return
    await accumulator.submit(message, collector)


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
