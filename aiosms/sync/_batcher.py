"""The blocking Batcher: ``aiosms.Batcher`` run in its blocking client's loop.

The async Batcher is built and entered inside the client's loop, and stays in one task
there for as long as the ``with`` block lasts (its task group must be left by the task
that entered it). ``send`` from any number of threads shares packets; ``send_all`` and
``track`` are blocking iterators over the async generators, reading the caller's
messages in the caller's thread. A Batcher does not cross ``fork()``: it belongs to
the loop it was opened in.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from aiosms._batching import (
    DEFAULT_LINGER,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_PENDING,
    hand_over_unclaimed,
)
from aiosms._batching import Batcher as AsyncBatcher
from aiosms._errors import ClosedError
from aiosms._models import Message, Receipt, StatusReport
from aiosms.sync._clients import SyncClient, loop_of, open_batchers, unopened_twin

__all__ = ["Batcher"]


class Batcher:
    """Groups messages from any number of threads into packets and sends them concurrently.

    >>> with aiosms.sync.MySms(username="u", password="p", sender="Shop") as sms:  # doctest: +SKIP
    ...     with aiosms.sync.Batcher(sms, max_batch_size=500) as batcher:
    ...         for receipt in batcher.send_all(messages):
    ...             ...

    The options and the rules are ``aiosms.Batcher``'s. ``on_receipt`` is called in the
    client's event-loop thread: keep it short, make it thread-safe, and do not call the
    blocking API from it. ``before_send`` and ``after_send`` are async functions, as on
    ``aiosms.Batcher``, awaited in that thread. Leaving the ``with`` block flushes and
    waits for what is in flight; ``close()`` does the same (closing the client closes its
    open Batchers).
    """

    def __init__(
        self,
        client: SyncClient[Any],
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
        if not isinstance(client, SyncClient):
            raise TypeError(
                f"expected an aiosms.sync client, got {type(client).__name__} "
                "(an async client goes with aiosms.Batcher)"
            )
        self._options: dict[str, Any] = {
            "max_batch_size": max_batch_size,
            "linger": linger,
            "max_concurrency": max_concurrency,
            "max_pending": max_pending,
            "rate": rate,
            "on_receipt": on_receipt,
            # Async hooks, as on aiosms.Batcher: awaited in the client's loop thread.
            "before_send": before_send,
            "after_send": after_send,
        }
        # Checks the options now, as the async Batcher does; it is never entered.
        template = AsyncBatcher(unopened_twin(client), **self._options)
        self.client = client
        self.max_batch_size = template.max_batch_size
        self.linger = template.linger
        self.max_concurrency = template.max_concurrency
        self.max_pending = template.max_pending
        self.rate = template.rate
        self.on_receipt = on_receipt
        self.before_send = before_send
        self.after_send = after_send
        self._lock = threading.Lock()
        self._state = "unopened"
        self._batcher: AsyncBatcher | None = None
        self._context: AbstractContextManager[AsyncBatcher] | None = None
        self._generation = -1

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Batcher:
        with self._lock:
            if self._state != "unopened":
                raise RuntimeError("a Batcher can be entered only once")
            loop = loop_of(self.client)
            portal, async_client = loop.get()
            batcher = loop.call_in(portal, lambda: AsyncBatcher(async_client, **self._options))
            context = portal.wrap_async_context_manager(batcher)
            context.__enter__()
            self._batcher, self._context = batcher, context
            self._generation = loop.generation
            self._state = "open"
            open_batchers(self.client).add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave(exc_type, exc, tb)

    def close(self) -> None:
        """Flush, wait for what is in flight, and stop. Safe to call twice."""
        self._leave(None, None, None)

    def _leave(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            if self._state != "open":
                return
            self._state = "closed"
            context = self._context
            self._context = None
            open_batchers(self.client).discard(self)
        if context is not None and self._generation == loop_of(self.client).generation:
            context.__exit__(exc_type, exc, tb)

    @property
    def closed(self) -> bool:
        """True once the ``with`` block has ended or ``close()`` has run."""
        return self._state == "closed"

    def _open_batcher(self) -> AsyncBatcher:
        if self._state == "unopened":
            raise RuntimeError("enter the Batcher first: with Batcher(client) as batcher")
        if self._state != "open" or self._batcher is None:
            raise ClosedError("the Batcher is closed: nothing was sent")
        if self._generation != loop_of(self.client).generation:
            raise ClosedError(
                "this Batcher was opened in another process (before a fork) and stays "
                "there: nothing was sent. Open a Batcher in each worker process."
            )
        return self._batcher

    # -- sending -----------------------------------------------------------------------

    def send(self, message: Message) -> Receipt:
        """Send one message with others; return its receipt or raise its typed error
        (the async twin's ``send``)."""
        batcher = self._open_batcher()
        return self.client._run(lambda _: batcher.send(message))

    def send_all(
        self, messages: Iterable[Any], *, make: Callable[[Any], Message] | None = None
    ) -> Iterator[Receipt]:
        """Send every message; yield one receipt per message as each completes.

        ``messages`` is read in this thread (a database cursor stays in its own
        thread), only as fast as receipts are taken: memory stays bounded by
        ``max_pending`` whatever the source's length. A failure is the receipt's
        ``error``; the stream never stops for one message. If the source raises, the
        receipts of what was read still come, then the error. Leaving early (``break``,
        or closing the iterator) withdraws what is still queued; receipts of packets
        already in flight go to ``on_receipt`` or the ``aiosms.batcher`` log.

        With ``make``, ``messages`` are rows of any kind and ``make(row)`` builds each
        Message (in the client's loop thread); a row it refuses with ``ValidationError``
        becomes a REJECTED receipt carrying its key, as in ``aiosms.Batcher.send_all``.
        """
        batcher = self._open_batcher()
        if make is not None:
            build = make
            return self.client._iterate(
                lambda _, source: batcher.send_all(source, make=build),  # type: ignore[arg-type]
                messages,
                leftovers=lambda receipts: hand_over_unclaimed(batcher, receipts),
            )
        return self.client._iterate(
            lambda _, source: batcher.send_all(source),  # type: ignore[arg-type]
            messages,
            leftovers=lambda receipts: hand_over_unclaimed(batcher, receipts),
        )

    def flush(self) -> None:
        """Send the open packet now, without waiting for it to fill or linger."""
        batcher = self._open_batcher()
        self.client._run(lambda _: batcher.flush())

    def track(
        self,
        receipts_or_ids: Iterable[Receipt | str],
        *,
        interval: float = 5.0,
        max_interval: float = 60.0,
        deadline: float | None = 3600.0,
    ) -> Iterator[StatusReport]:
        """Poll the states of sent messages; yield each report when its state changes
        (the async twin's ``track``: same options, same stopping rules)."""
        batcher = self._open_batcher()
        entries = list(receipts_or_ids)
        return self.client._iterate(
            lambda _, __: batcher.track(
                entries, interval=interval, max_interval=max_interval, deadline=deadline
            )
        )

    def __repr__(self) -> str:
        return (
            f"Batcher({self.client!r}, max_batch_size={self.max_batch_size}, "
            f"max_concurrency={self.max_concurrency}, state={self._state!r})"
        )
