"""What a client needs from a gateway's codec, and what a Batcher needs from a client.

Two package-internal contracts, written down rather than implied by private
attributes:

- ``Codec``: a gateway's wire configuration and pure functions (no I/O): prepare a
  message, build a send or status request, parse the replies into models. A
  client composes one codec with one transport.
- ``PacketSender``: what the code above the clients (``send_many``, the Batcher,
  campaigns) drives, one packet at a time. ``_send_packet`` is the single entry
  point for a packet: it never raises for its messages' failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

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
    """What code above a client drives: a packet of prepared messages at a time."""

    @property
    def _batch_limit(self) -> int | None:
        """Most messages one request can carry (None: as many as the caller packs)."""

    @property
    def _connection_limit(self) -> int | None:
        """Connections the transport's pool holds (None: not known)."""

    def _check_runtime(self) -> None:
        """Refuse an event loop the transport cannot run on."""

    def _prepare(self, message: Message) -> object:
        """Check a message against the gateway's rules; return its wire form."""

    async def _send_packet(
        self, messages: Sequence[Message], wires: Sequence[object], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send one request's messages: one receipt each, in order, never raising for
        their failures (only cancellation escapes)."""
