"""The Batcher's tasks: started together on entry, stopped in one order on exit.

The accumulator's linger timers, the sender's workers and the ``send_all`` feeders
run in one task group. How they stop is what keeps every message's outcome: intake
closes first and feeders stop; then either the open packet is sealed (a normal exit:
the workers drain the queue) or everything is cancelled (a cancelled Batcher:
packets in flight become unknown outcomes); whatever never reached a worker then
fails as not sent. The crew knows nothing of options or callers.
"""

from __future__ import annotations

import math
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from aiosms._batching._accumulator import Accumulator
from aiosms._batching._feeder import Feeders
from aiosms._batching._packet import Packet
from aiosms._batching._sender import Sender
from aiosms._errors import ClosedError

__all__ = ["Crew"]


class Crew:
    """The task group of one Batcher, and the order its tasks stop in."""

    __slots__ = ("_accumulator", "_feeders", "_sender", "_tg")

    def __init__(self, accumulator: Accumulator, sender: Sender, feeders: Feeders) -> None:
        self._accumulator = accumulator
        self._sender = sender
        self._feeders = feeders
        self._tg: TaskGroup | None = None

    @property
    def task_group(self) -> TaskGroup:
        """The group ``send_all`` starts its feeders in (only while running)."""
        assert self._tg is not None
        return self._tg

    async def start(self, *, workers: int, rate: float | None, burst: float) -> None:
        """Enter the task group; start the linger timers' home and the workers."""
        sealed_send, sealed_receive = anyio.create_memory_object_stream[Packet](math.inf)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._accumulator.start(self._tg, sealed_send)
        self._sender.start(self._tg, sealed_receive, workers=workers, rate=rate, burst=burst)

    async def stop(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Stop in order (see the module's docstring); the task group's exit result."""
        tg = self.task_group
        self._accumulator.close()
        self._feeders.cancel_all()
        cancelled = exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class())
        if cancelled:
            tg.cancel_scope.cancel()
        else:
            self._accumulator.seal()
        # Workers drain what is sealed, then stop when the queue ends.
        self._accumulator.end_queue()
        try:
            if cancelled:
                return await tg.__aexit__(exc_type, exc, tb)
            # An error in the body still lets the workers finish what was sealed.
            await tg.__aexit__(None, None, None)
            return None
        finally:
            closed = ClosedError("the Batcher closed before this message was sent")
            self._accumulator.fail_all(closed)
            self._sender.fail_leftovers(closed)
