"""One event loop in a background thread per blocking client, and the ways calls cross into it.

``LoopThread`` builds its resource (an async client) inside its own loop, so the
resource is bound to that loop; it starts on first use, serves any number of calling
threads, and stops on ``close()``, when its owner is collected, or at interpreter exit
(bounded: a forgotten client never holds the process up). After ``fork()`` a child
never touches what it inherited (the parent's loop, thread and sockets): it builds its
own on first use, or refuses when the resource wraps connections the caller supplied.
``iterate`` drives an async generator from a blocking thread with bounded memory.

Nothing here knows a gateway, and nothing here cancels a call in flight: a cancelled
send is an unknown outcome, so a call always runs to its end.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from aiosms._errors import ClosedError

__all__ = ["EXIT_GRACE", "LoopThread"]

R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("aiosms.sync")

#: Seconds a client closed at interpreter exit (or when collected) waits for calls in
#: flight and for its pool to close, before the process goes on without it.
EXIT_GRACE = 5.0
#: Messages a blocking ``send_all`` takes from its source and hands over per trip
#: into the loop: a trip costs tens of microseconds, so not one per message.
_STRIDE = 64
#: Items an async generator may get ahead of the blocking thread that reads it.
_AHEAD = 256

#: Every live loop, so a forked child can make each one forget its parent's.
_loops: weakref.WeakSet[LoopThread[Any]] = weakref.WeakSet()
#: What a forked child inherited from its parent's loops. Kept referenced, never closed:
#: the sockets are the parent's too, and collecting them could close or warn about them.
_inherited: list[object] = []


class LoopThread(Generic[R]):
    """An event loop in a daemon thread that owns one resource, built inside that loop.

    ``open`` builds the resource in the loop; ``close`` releases it there after every
    call has finished. ``survives_fork`` False makes a forked child refuse to rebuild
    (the resource wraps connection objects the caller made, which the child shares
    with its parent); ``refusal`` is the message it refuses with.
    """

    def __init__(
        self,
        open: Callable[[], Awaitable[R]],
        close: Callable[[R], Awaitable[None]],
        *,
        backend: str,
        backend_options: dict[str, Any] | None,
        name: str,
        survives_fork: bool = True,
        refusal: str = "",
    ) -> None:
        self._open = open
        self._close = close
        self.backend = backend
        self._backend_options = backend_options
        self._name = name
        self._survives_fork = survives_fork
        self._fork_refusal = refusal
        self._lock = threading.Lock()
        #: (portal, resource, pid of the process that started them), or None.
        self._running: tuple[BlockingPortal, R, int] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._refusal: str | None = None
        #: Blocking iterators not yet finished: closing stops them, or their generators
        #: would hold the loop open waiting for a reader that is gone.
        self._relays: set[_Relay[Any]] = set()
        #: Counts the loops this object has had; what lives in one loop (a Batcher)
        #: compares it to know that its loop is gone.
        self.generation = 0
        _loops.add(self)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread(self) -> threading.Thread | None:
        """The loop's thread while it runs in this process."""
        return self._thread

    def get(self) -> tuple[BlockingPortal, R]:
        """The running portal and resource, started now if need be."""
        running = self._running
        if running is not None and running[2] == os.getpid():
            return running[0], running[1]
        with self._lock:
            running = self._running
            if running is not None and running[2] != os.getpid():
                # A fork the at-fork hook did not see (it always should): same rule.
                self._forget_parent()
            if self._closed:
                raise ClosedError(f"{self._name} is closed: create a new client")
            if self._refusal is not None:
                raise ClosedError(self._refusal)
            if self._running is None:
                portal, resource, thread = self._start()
                self._thread = thread
                self._running = (portal, resource, os.getpid())
            return self._running[0], self._running[1]

    def _start(self) -> tuple[BlockingPortal, R, threading.Thread]:
        ready: concurrent.futures.Future[tuple[BlockingPortal, R]] = concurrent.futures.Future()
        # A daemon thread of our own (not an executor's): at interpreter exit nothing
        # joins it before atexit handlers run, so a forgotten client cannot hang exit.
        thread = threading.Thread(target=self._run, args=(ready,), name=self._name, daemon=True)
        thread.start()
        try:
            portal, resource = ready.result()
        except BaseException:
            thread.join()
            raise
        self.generation += 1
        return portal, resource, thread

    def _run(self, ready: concurrent.futures.Future[tuple[BlockingPortal, R]]) -> None:
        async def main() -> None:
            resource: R | None = None
            opened = False
            try:
                async with BlockingPortal() as portal:
                    resource = await self._open()
                    opened = True
                    ready.set_result((portal, resource))
                    await portal.sleep_until_stopped()
                # The portal waits for every call in flight before it exits.
            finally:
                if opened:
                    with anyio.CancelScope(shield=True):
                        await self._close(resource)  # type: ignore[arg-type]

        try:
            anyio.run(main, backend=self.backend, backend_options=self._backend_options)
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            else:
                logger.exception("the event loop of %s failed", self._name)

    def close(self, grace: float | None = None) -> None:
        """Stop taking calls, wait for those in flight (up to ``grace`` seconds if
        given), release the resource in its loop and end the thread. Safe to call twice
        and from any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running, self._running = self._running, None
            thread, self._thread = self._thread, None
        if running is None or thread is None or running[2] != os.getpid():
            return
        portal = running[0]
        for relay in list(self._relays):
            with contextlib.suppress(RuntimeError):
                portal.start_task_soon(relay.cancel)
        if threading.current_thread() is thread:
            # Collected inside its own loop: it cannot wait for itself.
            threading.Thread(target=_stop, args=(portal, thread, grace), daemon=True).start()
            return
        _stop(portal, thread, grace)

    def close_at_exit(self) -> None:
        self.close(EXIT_GRACE)

    def _forget_parent(self) -> None:
        """In a forked child: let go of the parent's loop without touching it."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        running, self._running = self._running, None
        thread, self._thread = self._thread, None
        if running is None and thread is None:
            return
        _inherited.append((running, thread, self._relays))
        self._relays = set()
        self.generation += 1
        if not self._survives_fork:
            self._refusal = self._fork_refusal

    # -- calls -------------------------------------------------------------------------

    def call(self, func: Callable[[R], Awaitable[T]]) -> T:
        """Run ``func(resource)`` in the loop and wait for its result or exception."""
        portal, resource = self.get()
        result: T = self.call_in(portal, func, resource)
        return result

    def call_in(self, portal: BlockingPortal, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` (sync, or async and awaited) in ``portal``'s loop; wait."""
        try:
            future: concurrent.futures.Future[Any] = portal.start_task_soon(func, *args)
        except RuntimeError:
            if threading.current_thread() is self._thread:
                raise RuntimeError(
                    "the blocking API cannot be called from its own event loop thread "
                    "(from an on_receipt hook, say)"
                ) from None
            # The loop stopped between looking it up and starting the call: nothing ran.
            raise ClosedError(f"{self._name} is closed: nothing was sent") from None
        try:
            return future.result()
        except BaseException:
            if not future.done():
                # The caller stopped waiting (a signal, a time limit): the call goes on
                # in the loop, and what it did must not vanish without a word.
                future.add_done_callback(_log_abandoned)
            raise

    def iterate(
        self,
        make: Callable[[AsyncIterator[Any] | None], AsyncGenerator[T, None]],
        feed: Iterable[Any] | None = None,
        *,
        leftovers: Callable[[list[T]], None] | None = None,
        portal: BlockingPortal | None = None,
    ) -> Iterator[T]:
        """Iterate, from this thread, the async generator ``make(source)`` running in
        the loop, with bounded memory.

        ``feed`` (if given) is read here, in the calling thread, never in the loop's
        (a Django queryset must stay in its own thread), and reaches the generator as
        the async iterable ``source`` only as fast as it takes items. If ``feed``
        raises, what was read still goes through and the error is raised at the end.
        Leaving early stops the generator; items it had produced that were not
        taken go to ``leftovers``.
        """
        if portal is None:
            portal, _ = self.get()
        relay: _Relay[T] = self.call_in(portal, _Relay, leftovers)
        source = relay.source() if feed is not None else None
        # Started from this thread, in the portal's task group: the generator outlives
        # any one call into the loop.
        portal.start_task_soon(relay.pump, make, source)
        self._relays.add(relay)
        items = iter(feed) if feed is not None else None
        offer: list[Any] = []
        ready: deque[T] = deque()
        feed_error: Exception | None = None
        finished = False
        try:
            while True:
                if items is not None and not offer:
                    for _ in range(_STRIDE):
                        try:
                            offer.append(next(items))
                        except StopIteration:
                            items = None
                            break
                        except Exception as error:
                            feed_error, items = error, None
                            break
                taken, ready, done = self.call_in(portal, relay.exchange, offer, items is None)
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
            self._relays.discard(relay)
            if not finished:
                self._abandon(portal, relay, leftovers, list(ready))

    def _abandon(
        self,
        portal: BlockingPortal,
        relay: _Relay[T],
        leftovers: Callable[[list[T]], None] | None,
        unread: list[T],
    ) -> None:
        if threading.current_thread() is self._thread:
            # Closed by the collector inside the loop: stop it; nothing can wait here.
            relay.scope.cancel()
            if unread and leftovers is not None:
                leftovers(unread)
            return
        try:
            left = unread + self.call_in(portal, relay.stop)
            if left and leftovers is not None:
                self.call_in(portal, leftovers, left)
        except ClosedError:
            pass


def _stop(portal: BlockingPortal, thread: threading.Thread, grace: float | None) -> None:
    with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
        portal.start_task_soon(portal.stop).result(grace)
    thread.join(grace)
    if thread.is_alive():
        logger.warning("%s: calls still in flight after %s s; not waiting", thread.name, grace)


def _log_abandoned(future: concurrent.futures.Future[Any]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.warning("a call finished after its caller stopped waiting: %r", error)
    else:
        logger.warning("a call finished after its caller stopped waiting: %r", future.result())


def _after_fork_in_child() -> None:
    for loop in list(_loops):
        loop._forget_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Relay(Generic[T]):
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
