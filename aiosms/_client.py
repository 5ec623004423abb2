"""What both gateway clients share: the public calls, the packet entry point, fan-out.

A client is a facade composed of a gateway codec (wire configuration and pure
request/reply functions, see ``_gateway.Codec``) and a transport (by default pooled
httpx clients), owned from creation to ``aclose()`` (``_lifecycle.TransportOwner``);
its shared options are checked by ``_client_options``. Every request goes through the
send policy's two doors (``_send_policy.read`` and ``_send_policy.send``).
``_send_packet`` is the one entry point for a packet of prepared messages, driven
alike by ``send``, ``send_many`` and the Batcher. Nothing here knows a gateway's
wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeVar

import httpx

from aiosms import _many, _send_policy
from aiosms._client_options import Endpoint, as_timeout, check_retry, endpoint, make_transport
from aiosms._errors import MessageNotFoundError, ProtocolError, SmsError
from aiosms._gateway import Codec, Format, HttpMethod, TimeoutArg
from aiosms._lifecycle import TransportOwner
from aiosms._many import fan_out
from aiosms._models import DeliveryState, Message, Receipt, StatusReport
from aiosms._outcomes import fail_each, require_id, require_message, unexpected
from aiosms._retry import RetryPolicy
from aiosms._sharded import ProxyArg, VerifyArg
from aiosms._transport import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Transport
from aiosms._validation import positive_int

T = TypeVar("T")
Self = TypeVar("Self", bound="BaseClient")

logger = logging.getLogger("aiosms")

DEFAULT_MAX_CONCURRENCY = 10


class BaseClient(TransportOwner):
    """A gateway client: a codec and a transport behind the public calls.

    Subclasses check their gateway's own options and give ``codec``, which builds
    their codec from the checked endpoint.
    """

    provider: ClassVar[str]
    #: Requests in flight at most in ``send_many`` / ``status_many`` (and a Batcher's
    #: default worker count).
    max_concurrency: int
    #: Most SMS parts a message may take (None: no limit), checked before any request.
    max_parts: int | None
    _codec: Codec[Any]
    #: Check a message against the gateway's rules; return its wire form. The codec's
    #: own ``prepare``, bound once: it runs once per message of a campaign.
    _prepare: Callable[[Message], Any]

    def __init__(
        self,
        *,
        codec: Callable[[Endpoint], Codec[Any]],
        password: str,
        sender: str | None,
        base_url: str,
        format: Format,
        method: HttpMethod,
        max_parts: int | None,
        timeout: float | httpx.Timeout,
        limits: httpx.Limits | None,
        retry: RetryPolicy | None,
        max_concurrency: int,
        http_client: httpx.AsyncClient | None,
        http_transport: httpx.AsyncBaseTransport | None,
        transport: Transport | Literal["aiohttp"] | None,
        proxy: ProxyArg = None,
        verify: VerifyArg = True,
        trust_env: bool = False,
    ) -> None:
        at = endpoint(password, sender, base_url, format, method, max_parts)
        self._password = at.password
        self.sender = sender
        self.base_url = at.base_url
        self._format = at.format
        self._method = at.method
        self.max_parts = at.max_parts
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self.retry = check_retry(retry)
        super().__init__(
            make_transport(
                method=self._method,
                timeout=as_timeout(timeout) or DEFAULT_TIMEOUT,
                limits=limits,
                max_concurrency=self.max_concurrency,
                http_client=http_client,
                http_transport=http_transport,
                transport=transport,
                proxy=proxy,
                verify=verify,
                trust_env=trust_env,
            )
        )
        self._codec = codec(at)
        self._prepare = self._codec.prepare

    # -- options -----------------------------------------------------------------

    @property
    def format(self) -> Format:
        """``"json"`` or ``"xml"``, fixed when the client is built."""
        return self._format

    @property
    def method(self) -> HttpMethod:
        """``"POST"`` or ``"GET"``, fixed when the client is built (the transport was
        checked against it then)."""
        return self._method

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sender={self.sender!r}, base_url={self.base_url!r})"

    # -- one message, one packet ---------------------------------------------------

    async def send(self, message: Message, *, timeout: TimeoutArg = None) -> Receipt:
        """Send one message; return its receipt or raise its typed error.

        Raises ``ValidationError`` before any request (on 1000sms also for ``at``
        and ``ttl``, which its ``push_msg`` cannot carry), ``ProviderError``
        subclasses when the gateway refuses, ``TransportError`` when it provably
        never left and ``DeliveryUnknownError`` when it may have.
        """
        require_message(message)
        self._check_open()
        wire = self._prepare(message)
        (receipt,) = await self._send_packet((message,), (wire,), timeout)
        if receipt.error is not None:
            raise receipt.error
        return receipt

    async def status(self, message_id: str, *, timeout: TimeoutArg = None) -> StatusReport:
        """The state of one message (1000sms: ``get_msg_report``).

        Raises ``MessageNotFoundError`` for an id the gateway does not know, and
        ``ProtocolError`` when the reply says nothing about it.
        """
        message_id = require_id(message_id)
        self._check_open()
        (report,) = await self._status_batch([message_id], timeout)
        if isinstance(report.error, (MessageNotFoundError, ProtocolError)):
            raise report.error
        return report

    @property
    def _batch_limit(self) -> int | None:
        """Most messages one request can carry (None: as many as the caller packs)."""
        return self._codec.batch_limit

    @property
    def _send_many_size(self) -> int:
        """Messages per request in ``send_many``."""
        return self._batch_limit or 1

    @property
    def _status_many_size(self) -> int:
        """Ids per request in ``status_many``: as many as messages per send request."""
        return self._send_many_size

    async def _send_packet(
        self, messages: Sequence[Message], wires: Sequence[Any], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send one request's prepared messages: one receipt each, in order.

        The one entry point for a packet (``send``, ``send_many`` and the Batcher):
        it never raises for its messages' failures, only for cancellation.
        """
        codec = self._codec
        try:
            self._check_open()
            response = await _send_policy.send(
                self,
                codec.send_request(wires),
                messages=messages,
                what="send",
                timeout=as_timeout(timeout),
            )
            return codec.parse_send(response.body, messages, wires)
        except SmsError as error:
            return fail_each(messages, error)
        except Exception as error:
            # One packet's surprise is its messages' outcome, never the other packets'.
            return unexpected(self.provider, messages, error)

    async def _status_batch(self, ids: list[str], timeout: TimeoutArg) -> list[StatusReport]:
        """Ask about one request's ids; an unknown id is a REJECTED report, not an error."""
        codec = self._codec
        try:
            return await self._read(
                codec.status_request(ids),
                lambda body: codec.parse_status(body, ids),
                what="status",
                timeout=timeout,
            )
        except MessageNotFoundError as missing:
            if len(ids) != 1:
                raise
            return [
                StatusReport(ids[0], DeliveryState.REJECTED, error=missing.with_traceback(None))
            ]

    async def _read(
        self,
        request: Any,
        parse: Callable[[bytes], T],
        *,
        what: str,
        timeout: TimeoutArg = None,
    ) -> T:
        return await _send_policy.read(self, request, parse, what=what, timeout=as_timeout(timeout))

    # -- many at once ------------------------------------------------------------------

    @property
    def _in_flight_limit(self) -> int:
        # Requests beyond the pool's connections would only queue for one. aiosms's own
        # pool has one connection per request in flight unless ``limits`` says fewer.
        return min(self.max_concurrency, self._connection_limit or self.max_concurrency)

    async def send_many(
        self, messages: Iterable[Message], *, timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send many messages; one receipt per message, in the order given.

        my-sms POST packs them into packets of ``packet_size``; otherwise each message is
        a request of its own. At most ``max_concurrency`` requests are in flight. Never
        raises for a message's own failure: a rejection, invalid input or an unknown
        outcome is the receipt's ``error``, with state REJECTED or UNKNOWN. After an
        account-level refusal (authentication, blocked account, funds) the requests not
        yet started fail as not sent. Once anything has gone out it raises nothing
        but cancellation: even an unexpected failure of one request becomes its
        messages' receipts (UNKNOWN, ``DeliveryUnknownError``), and the others go on.
        """
        # A bad option is the call's error, raised before anything, not each message's.
        as_timeout(timeout)
        return await _many.send_many(self, messages, timeout)

    async def status_many(
        self, message_ids: Iterable[str], *, timeout: TimeoutArg = None
    ) -> list[StatusReport]:
        """The states of many messages, in the order asked, concurrently: one report per id.

        my-sms POST asks in packets of ``packet_size`` (replies matched by id); otherwise
        one request per id. An id the gateway does not know gets a report with state
        REJECTED and a ``MessageNotFoundError`` as its ``error``. Once a request has
        left this raises nothing but cancellation: a request that failed otherwise
        (a network fault after the retries, an unreadable reply, a refusal) gives each
        of its ids a report with state UNKNOWN and that typed error as ``error``. After
        an account-level refusal (authentication, blocked account) the requests not
        yet started are not made: their ids get reports carrying the same refusal.
        """
        as_timeout(timeout)
        return await _many.status_many(self, message_ids, timeout)


__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "BaseClient",
    "Format",
    "HttpMethod",
    "fan_out",
    "positive_int",
]
