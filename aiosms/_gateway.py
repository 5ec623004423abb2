"""What a client needs from a gateway's codec, and what a Batcher needs from a client.

Two package-internal contracts, written down rather than implied by private
attributes:

- ``Codec``: a gateway's wire configuration and pure functions (no I/O): prepare a
  message, build a send or status request, parse the replies into models. A
  client composes one codec with one transport.
- ``PacketSender``: everything the code above the clients (``send_many``, the
  Batcher, tracking, campaigns, the blocking clients) uses of a client, and they
  are typed against it. ``_send_packet`` is the single entry point for a packet:
  it never raises for its messages' failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, TypeVar

import httpx

from aiosms._models import Message, Receipt, StatusReport
from aiosms._transport import WireRequest

__all__ = ["Codec", "Format", "HttpMethod", "PacketSender", "TimeoutArg"]

Format = Literal["json", "xml"]
HttpMethod = Literal["POST", "GET"]
TimeoutArg = float | httpx.Timeout | None

W = TypeVar("W")


class Codec(Protocol[W]):
    """A gateway on the wire; ``W`` is a prepared message's wire form."""

    @property
    def provider(self) -> str:
        """The gateway's name, for error messages."""

    @property
    def batch_limit(self) -> int | None:
        """Most messages one send request carries (None: as many as the caller packs)."""

    def prepare(self, message: Message) -> W:
        """Check a message against the gateway's rules (``ValidationError``); its wire form."""

    def send_request(self, wires: Sequence[W]) -> WireRequest:
        """The request that sends these prepared messages."""

    def parse_send(
        self, body: bytes, messages: Sequence[Message], wires: Sequence[W]
    ) -> list[Receipt]:
        """One receipt per message, in order; raises the request's typed error."""

    def status_request(self, ids: Sequence[str]) -> WireRequest:
        """The request that asks for the states of these ids."""

    def parse_status(self, body: bytes, ids: Sequence[str]) -> list[StatusReport]:
        """One report per id, in order; raises the request's typed error."""


class PacketSender(Protocol):
    """Everything code above a client (``send_many``, the Batcher, tracking, campaigns,
    the blocking clients) uses of it: a packet of prepared messages at a time, and
    the states of many messages. Both gateway clients are one."""

    @property
    def provider(self) -> str:
        """The gateway's name, for error messages."""

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most, as the caller configured the client."""

    @property
    def _batch_limit(self) -> int | None:
        """Most messages one request can carry (None: as many as the caller packs)."""

    @property
    def _connection_limit(self) -> int | None:
        """Connections the transport's pool holds (None: not known)."""

    @property
    def _in_flight_limit(self) -> int:
        """Requests worth having in flight: no more than the pool has connections."""

    @property
    def _send_many_size(self) -> int:
        """Messages per request in ``send_many``."""

    @property
    def _status_many_size(self) -> int:
        """Ids per request in ``status_many``."""

    def _check_runtime(self) -> None:
        """Refuse an event loop the transport cannot run on."""

    def _check_open(self) -> None:
        """Raise ``ClosedError`` unless requests may go out."""

    def _prepare(self, message: Message) -> Any:
        """Check a message against the gateway's rules; return its wire form."""

    async def _send_packet(
        self, messages: Sequence[Message], wires: Sequence[Any], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send one request's messages: one receipt each, in order, never raising for
        their failures (only cancellation escapes)."""

    async def _status_batch(self, ids: list[str], timeout: TimeoutArg) -> list[StatusReport]:
        """Ask about one request's ids; an unknown id alone is a REJECTED report."""

    async def status_many(
        self, message_ids: Iterable[str], *, timeout: TimeoutArg = None
    ) -> list[StatusReport]:
        """The states of many messages, in the order asked: one report per id."""
