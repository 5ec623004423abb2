"""The Batcher's synchronisation primitives: a window of places and a token bucket.

Plain counters on anyio's clock and events; they know nothing of messages or packets.
"""

from __future__ import annotations

from collections import OrderedDict

import anyio

__all__ = ["TokenBucket", "Window"]


class Window:
    """A count of held places with a limit; waiting only when full, in FIFO order.

    A freed place is handed straight to the longest waiter (one wake-up per place,
    never a stampede of every waiter), so while anyone waits the window stays full and
    ``held < limit`` alone says a place is free. A waiter cancelled in the instant its
    place came passes the place on.

    Why not anyio's ``Semaphore(fast_acquire=True)``: it gives the same hand-off (a
    release wakes the first waiter, on asyncio and on trio), but its ``acquire()`` is a
    coroutine with a cancellation check even when a place is free, its
    ``acquire_nowait()`` says "full" by raising ``WouldBlock``, a packet's places
    come back one ``release()`` at a time, and on asyncio a cancelled waiter leaves
    its queue by ``deque.remove`` (linear: thousands giving up at once is quadratic).
    Here a free place is a plain increment (the feeder reads and bumps ``held``
    inline, once per message of a campaign), ``give(count)`` returns a whole packet's
    places at once, and a cancelled waiter leaves in O(1).
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
        """Take a place, waiting in line for one if none is free."""
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
        """Give back ``count`` places, handing each to the longest waiter if any."""
        self.held -= count
        waiters = self._waiters
        while waiters and self.held < self.limit:
            self.held += 1
            waiters.popitem(last=False)[0].set()


class TokenBucket:
    """Messages per second on anyio's clock; holds at least one packet's worth."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = anyio.current_time()
        self._lock = anyio.Lock()

    async def take(self, count: int) -> None:
        """Wait until ``count`` tokens are there, then take them (callers queue in turn)."""
        async with self._lock:
            while True:
                now = anyio.current_time()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= count:
                    self.tokens -= count
                    return
                await anyio.sleep((count - self.tokens) / self.rate)
