"""One event loop in a background thread per blocking client, and the ways calls cross into it.

``LoopThread`` builds its resource (an async client) inside its own loop, so the
resource is bound to that loop; it starts on first use, serves any number of calling
threads, and stops on ``close()``, when its owner is collected, or at interpreter exit
(bounded: a forgotten client never holds the process up). After ``fork()`` a child
never touches what it inherited (the parent's loop, thread and sockets): it builds its
own on first use, or refuses when the resource wraps connections the caller supplied.
``iterate`` drives an async generator from a blocking thread with bounded memory
(through a relay, ``_relay``).

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from aiosms._errors import ClosedError
from aiosms.sync._relay import Relay, read

__all__ = ["EXIT_GRACE", "LoopThread"]

R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("aiosms.sync")

#: Seconds a client closed at interpreter exit (or when collected) waits for calls in
#: flight and for its pool to close, before the process goes on without it.
EXIT_GRACE = 5.0
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
        self.relays: set[Relay[Any]] = set()
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
        for relay in list(self.relays):
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
        _inherited.append((running, thread, self.relays))
        self.relays = set()
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
        the loop, with bounded memory (see ``_relay.read``; nothing starts before the
        first item is asked for)."""
        return read(self, make, feed, leftovers=leftovers, portal=portal)


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
