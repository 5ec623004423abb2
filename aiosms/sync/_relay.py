"""An async generator in the loop, read from a blocking thread with bounded memory.

``Relay`` lives in the loop: it moves the generator's items out to one blocking
reader, and (for ``send_all``) the reader's input in. ``read`` is the blocking side:
it reads the caller's iterable in the caller's thread (a Django queryset must stay
in its own thread), a stride at a time, and hands items over per trip into the loop,
never one per message. Leaving early stops the generator; what it had produced that
nobody took goes to ``leftovers``, never dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from aiosms._errors import ClosedError

__all__ = ["Relay", "read"]

T = TypeVar("T")

#: Messages a blocking ``send_all`` takes from its source and hands over per trip
#: into the loop: a trip costs tens of microseconds, so not one per message.
_STRIDE = 64
#: Items an async generator may get ahead of the blocking thread that reads it.
_AHEAD = 256


class _Loop(Protocol):
    """What ``read`` needs of the loop thread it reads through."""

    relays: set[Relay[Any]]

    @property
    def thread(self) -> threading.Thread | None: ...

    def get(self) -> tuple[BlockingPortal, Any]: ...

    def call_in(self, portal: BlockingPortal, func: Callable[..., Any], *args: Any) -> Any: ...


def read(
    loop: _Loop,
    make: Callable[[AsyncIterator[Any] | None], AsyncGenerator[T, None]],
    feed: Iterable[Any] | None = None,
    *,
    leftovers: Callable[[list[T]], None] | None = None,
    portal: BlockingPortal | None = None,
) -> Iterator[T]:
    """Iterate, from this thread, the async generator ``make(source)`` running in
    ``loop``, with bounded memory.

    ``feed`` (if given) is read here, in the calling thread, never in the loop's, and
    reaches the generator as the async iterable ``source`` only as fast as it takes
    items. If ``feed`` raises, what was read still goes through and the error is
    raised at the end. Leaving early stops the generator; items it had produced
    that were not taken go to ``leftovers``.
    """
    portal, relay = _start(loop, make, feed, leftovers, portal)
    items = iter(feed) if feed is not None else None
    offer: list[Any] = []
    ready: deque[T] = deque()
    feed_error: Exception | None = None
    finished = False
    try:
        while True:
            if items is not None and not offer:
                items, feed_error = _fill(items, offer)
            taken, ready, done = loop.call_in(portal, relay.exchange, offer, items is None)
            del offer[:taken]
            while ready:
                # Popped before it is yielded: if the reader leaves here, the rest
                # of ``ready`` is handed to ``leftovers``, never dropped.
                yield ready.popleft()
            if done:
                break
        finished = True
        if feed_error is not None:
            raise feed_error
    finally:
        loop.relays.discard(relay)
        if not finished:
            _abandon(loop, portal, relay, leftovers, list(ready))


def _start(
    loop: _Loop,
    make: Callable[[AsyncIterator[Any] | None], AsyncGenerator[T, None]],
    feed: Iterable[Any] | None,
    leftovers: Callable[[list[T]], None] | None,
    portal: BlockingPortal | None,
) -> tuple[BlockingPortal, Relay[T]]:
    """A relay in the loop, with the generator running into it."""
    if portal is None:
        portal, _ = loop.get()
    relay: Relay[T] = loop.call_in(portal, Relay, leftovers)
    source = relay.source() if feed is not None else None
    # Started from this thread, in the portal's task group: the generator outlives
    # any one call into the loop.
    portal.start_task_soon(relay.pump, make, source)
    loop.relays.add(relay)
    return portal, relay


def _fill(items: Iterator[Any], offer: list[Any]) -> tuple[Iterator[Any] | None, Exception | None]:
    """Take up to a stride of the caller's items into ``offer``; return the iterator
    (None once it is exhausted or failed) and what it raised."""
    for _ in range(_STRIDE):
        try:
            offer.append(next(items))
        except StopIteration:
            return None, None
        except Exception as error:
            return None, error
    return items, None


def _abandon(
    loop: _Loop,
    portal: BlockingPortal,
    relay: Relay[T],
    leftovers: Callable[[list[T]], None] | None,
    unread: list[T],
) -> None:
    if threading.current_thread() is loop.thread:
        # Closed by the collector inside the loop: stop it; nothing can wait here.
        relay.scope.cancel()
        if unread and leftovers is not None:
            leftovers(unread)
        return
    try:
        left = unread + loop.call_in(portal, relay.stop)
        if left and leftovers is not None:
            loop.call_in(portal, leftovers, left)
    except ClosedError:
        pass


class Relay(Generic[T]):
    """Lives in the loop: moves items out of an async generator to one blocking reader,
    and (for ``send_all``) the reader's input into it. Built, used and stopped only in
    the loop's thread, so it needs no lock; every wait is on one event that any change
    sets, so handing an item over never races a cancellation."""

    def __init__(self, leftovers: Callable[[list[T]], None] | None = None) -> None:
        self.leftovers = leftovers
        self.inbox: deque[Any] = deque()
        self.outbox: deque[T] = deque()
        self.input_closed = False
        self.finished = False
        self.error: Exception | None = None
        self.scope = anyio.CancelScope()
        self._changed = anyio.Event()
        self._done = anyio.Event()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def source(self) -> AsyncIterator[Any]:
        while True:
            if self.inbox:
                item = self.inbox.popleft()
                if not self.inbox:
                    # Room for a whole stride: wake the reader's thread now, not per message.
                    self._signal()
                yield item
            elif self.input_closed:
                return
            else:
                await self._changed.wait()

    async def pump(
        self,
        make: Callable[[AsyncIterator[Any] | None], AsyncGenerator[T, None]],
        source: AsyncIterator[Any] | None,
    ) -> None:
        generator = make(source)
        try:
            with self.scope:
                try:
                    async for item in generator:
                        self.outbox.append(item)
                        self._signal()
                        while len(self.outbox) >= _AHEAD:
                            await self._changed.wait()
                finally:
                    with anyio.CancelScope(shield=True):
                        await generator.aclose()
        except Exception as error:
            self.error = error
        finally:
            self.finished = True
            self._signal()
            self._done.set()

    async def exchange(self, offer: list[Any], last: bool) -> tuple[int, deque[T], bool]:
        """Take what fits of ``offer`` (``last``: nothing will follow it); return how
        many were taken, the items ready, and whether the generator is done (raising
        its error, if any, once every item has been handed over)."""
        while True:
            taken = 0
            if not self.input_closed:
                taken = max(0, min(_STRIDE - len(self.inbox), len(offer)))
                if taken:
                    self.inbox.extend(offer[:taken])
                if last and taken == len(offer):
                    self.input_closed = True
                if taken or self.input_closed:
                    # Wakes the source: it has messages, or the end of them.
                    self._signal()
            if self.outbox:
                ready, self.outbox = self.outbox, deque()
                self._signal()
                return taken, ready, False
            if self.finished:
                if self.error is not None:
                    raise self.error
                return taken, deque(), True
            if taken:
                return taken, deque(), False
            await self._changed.wait()

    def cancel(self) -> None:
        """Stop the generator because the loop is closing: items not yet taken go to
        ``leftovers``, and the reader gets ``ClosedError`` (the stream did not end by
        itself)."""
        if not self.finished:
            self.error = ClosedError("the client closed while this iterator was being read")
            self.scope.cancel()
        left, self.outbox = list(self.outbox), deque()
        if left and self.leftovers is not None:
            self.leftovers(left)
        self._signal()

    async def stop(self) -> list[T]:
        """Stop the generator (its own ``finally`` runs now); return items not taken."""
        self.scope.cancel()
        await self._done.wait()
        left = list(self.outbox)
        self.outbox.clear()
        return left
