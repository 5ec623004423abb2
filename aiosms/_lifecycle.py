"""A client's lifecycle: unopened, opened, closed; the event loop it belongs to.

Requests ask it before every attempt whether they may go out, and wait their
retry backoff on it, so ``aclose()`` stops a waiting retry at once. ``Lifecycle``
closes nothing itself; ``TransportOwner`` (what a client is, before it is a
gateway's) closes its transport when ``close()`` says so.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.lowlevel

from aiosms._errors import ClosedError
from aiosms._transport import Transport

__all__ = ["Lifecycle", "State", "TransportOwner"]

Self = TypeVar("Self", bound="TransportOwner")

logger = logging.getLogger("aiosms")


class State(enum.Enum):
    """Where a client is in its life."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class Lifecycle:
    """The state of one client, named ``name`` in the errors it raises."""

    __slots__ = ("_closing", "_loop", "name", "state")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = State.UNOPENED
        #: The event loop the client was first used in: its pooled connections belong
        #: to that loop, and writing on them from another one breaks mid-request.
        self._loop: anyio.lowlevel.EventLoopToken | None = None
        #: Set by close() so requests waiting to retry stop at once (made on first
        #: use: an anyio Event belongs to the running loop).
        self._closing: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Lifecycle({self.name}, {self.state.value})"

    @property
    def closed(self) -> bool:
        """True once the client is closed."""
        return self.state is State.CLOSED

    def enter(self, check_runtime: Callable[[], None]) -> None:
        """Mark the client open; refuse a second entry and a closed client, and let
        ``check_runtime`` refuse an event loop its transport cannot run on."""
        if self.state is State.OPENED:
            raise RuntimeError(f"{self.name} is already open: enter it only once")
        if self.state is State.CLOSED:
            raise ClosedError(f"{self.name} is closed: create a new client")
        check_runtime()
        self._check_loop()
        self.state = State.OPENED

    def close(self) -> bool:
        """Mark the client closed and wake waiting retries; True if the caller should
        now close the transport (not from a foreign loop, not a second time)."""
        if self.state is State.CLOSED:
            return False
        self.state = State.CLOSED
        if self._loop is not None and self._loop != anyio.lowlevel.current_token():
            logger.warning(
                "%s closed from another event loop than the one it was used in; "
                "its connections are left to that loop",
                self.name,
            )
            return False
        if self._closing is not None:
            self._closing.set()
        return True

    def check_open(self) -> None:
        """Raise ``ClosedError`` (nothing was sent) unless requests may go out."""
        if self.state is State.CLOSED:
            raise ClosedError(f"{self.name} is closed: create a new client")
        self._check_loop()

    def _check_loop(self) -> None:
        # A ClosedError, not a bare RuntimeError: to this event loop the client is as
        # good as closed (its connections live in another), nothing was sent, and
        # batch code already treats ClosedError as "not sent, stop".
        token = anyio.lowlevel.current_token()
        if self._loop is None:
            self._loop = token
        elif token != self._loop:
            raise ClosedError(
                f"{self.name} was first used in another event loop; its "
                "connections belong to that loop: create one client per event loop "
                "(for example one per asyncio.run())"
            )

    async def backoff(self, seconds: float) -> None:
        """Wait before a retry, or less if the client is closed meanwhile (the next
        attempt then stops with ``ClosedError``)."""
        if self.state is State.CLOSED:
            return
        if self._closing is None:
            self._closing = anyio.Event()
        with anyio.move_on_after(seconds):
            await self._closing.wait()


class TransportOwner:
    """A client's life around the transport it owns from creation to ``aclose()``:
    entered once, closed once (twice is harmless), its transport closed with it."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._guard = Lifecycle(type(self).__name__)

    async def __aenter__(self: Self) -> Self:
        self._guard.enter(self._check_runtime)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (not a caller-supplied httpx client). Safe to call twice.

        Requests waiting to retry stop with ``ClosedError`` (not sent). From another
        event loop than the one the client was used in, the client is only marked
        closed: its connections belong to that loop and cannot be closed from here.
        """
        if self._guard.close():
            # Shielded so a cancelled caller still returns every pooled connection.
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` has run (or the ``async with`` block has ended)."""
        return self._guard.closed

    @property
    def _connection_limit(self) -> int | None:
        return getattr(self._transport, "max_connections", None)

    def _check_runtime(self) -> None:
        # A transport that cannot run on this event loop says so on entry, not later.
        check = getattr(self._transport, "check_runtime", None)
        if check is not None:
            check()

    def _check_open(self) -> None:
        self._guard.check_open()
