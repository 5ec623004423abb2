"""What both gateway clients share: options, lifecycle, the packet entry point, fan-out.

A client is a facade composed of a gateway codec (wire configuration and pure
request/reply functions, see ``_gateway.Codec``) and a transport (by default pooled
httpx clients), owned from creation to ``aclose()``. Every request goes through the
send policy's two doors (``_send_policy.read`` and ``_send_policy.send``).
``_send_packet`` is the one entry point for a packet of prepared messages, driven
alike by ``send``, ``send_many`` and the Batcher. Nothing here knows a gateway's
wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

import anyio
import httpx

from aiosms import _many, _send_policy
from aiosms._errors import (
    MessageNotFoundError,
    ProtocolError,
    SmsError,
    ValidationError,
)
from aiosms._gateway import Codec, Format, HttpMethod, TimeoutArg
from aiosms._lifecycle import Lifecycle
from aiosms._many import fan_out
from aiosms._models import DeliveryState, Message, Receipt, StatusReport
from aiosms._outcomes import (
    fail_each,
    require_id,
    require_message,
    unexpected,
)
from aiosms._retry import RetryPolicy
from aiosms._secret import Secret as _Secret
from aiosms._sharded import ProxyArg, ShardedTransport, VerifyArg, check_proxy, tls_context
from aiosms._transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    HttpxTransport,
    Transport,
)
from aiosms._validation import (
    non_negative_int,
    non_negative_number,
    optional,
    positive_int,
    positive_number,
)

T = TypeVar("T")
Self = TypeVar("Self", bound="BaseClient")

logger = logging.getLogger("aiosms")

DEFAULT_MAX_CONCURRENCY = 10


def _as_timeout(
    value: float | httpx.Timeout | None, field: str = "timeout"
) -> httpx.Timeout | None:
    if value is None:
        return None
    if isinstance(value, httpx.Timeout):
        # httpx takes any float: a NaN here would make a send's outcome look unknown.
        for phase in ("connect", "read", "write", "pool"):
            optional(positive_number, getattr(value, phase), f"{field}.{phase}")
        return value
    return httpx.Timeout(positive_number(value, field))


def _check_limits(limits: object) -> httpx.Limits:
    if not isinstance(limits, httpx.Limits):
        raise ValidationError("limits", f"must be an httpx.Limits, not {type(limits).__name__}")
    optional(positive_int, limits.max_connections, "limits.max_connections")
    optional(non_negative_int, limits.max_keepalive_connections, "limits.max_keepalive_connections")
    optional(non_negative_number, limits.keepalive_expiry, "limits.keepalive_expiry")
    return limits


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(map(repr, allowed))}")
    return value


def _check_retry(retry: object) -> RetryPolicy:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError(
            "retry", f"must be an aiosms.RetryPolicy or None, not {type(retry).__name__}"
        )
    return retry or RetryPolicy()


def _pool_limits(
    limits: httpx.Limits | None,
    max_concurrency: int,
    *given: object,
) -> httpx.Limits:
    """The pool's limits, and a refusal of more than one of the ``given`` transports."""
    limits = None if limits is None else _check_limits(limits)
    if sum(x is not None for x in given) > 1:
        raise ValidationError(
            "http_client", "give at most one of http_client, http_transport and transport"
        )
    if limits is None:
        # Unless told otherwise, one connection per request in flight.
        n = max_concurrency
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=30)
    return limits


def _make_transport(
    *,
    method: HttpMethod,
    timeout: httpx.Timeout,
    limits: httpx.Limits | None,
    max_concurrency: int,
    http_client: httpx.AsyncClient | None,
    http_transport: httpx.AsyncBaseTransport | None,
    transport: Transport | Literal["aiohttp"] | None,
    proxy: ProxyArg,
    verify: VerifyArg,
    trust_env: bool,
) -> Transport:
    """The transport the options describe, checked against each other."""
    limits = _pool_limits(limits, max_concurrency, http_client, http_transport, transport)
    own_pool = http_client is None and http_transport is None and transport is None
    if not own_pool and (proxy is not None or verify is not True or trust_env):
        raise ValidationError(
            "proxy" if proxy is not None else "verify" if verify is not True else "trust_env",
            "applies to aiosms's own httpx pool only: configure your client or transport",
        )
    if transport == "aiohttp":
        from aiosms._aiohttp import AiohttpTransport

        transport = AiohttpTransport(timeout=timeout, limits=limits)
    elif isinstance(transport, str):
        raise ValidationError("transport", "must be 'aiohttp' or a transport object")
    if method == "GET" and getattr(transport, "retries_idempotent_requests", False):
        raise ValidationError(
            "method",
            "GET is refused on this transport: it resends idempotent requests by itself "
            "after a dropped connection, which could send an SMS twice; use POST",
        )
    if transport is None and own_pool:
        if not isinstance(trust_env, bool):
            raise ValidationError("trust_env", "must be True or False")
        # Several small httpx pools: one large pool collapses past ~10 connections.
        return ShardedTransport(
            connections=limits.max_connections or max_concurrency,
            timeout=timeout,
            limits=limits,
            proxy=check_proxy(proxy),
            verify=tls_context(verify, trust_env=trust_env),
            trust_env=trust_env,
        )
    return transport or HttpxTransport(
        client=http_client, timeout=timeout, limits=limits, http_transport=http_transport
    )


class BaseClient:
    """A gateway client: a codec and a transport behind the public calls.

    Subclasses check their own options and set ``_codec`` and ``_prepare`` in
    ``__init__``.
    """

    provider: ClassVar[str]
    #: Requests in flight at most in ``send_many`` / ``status_many`` (and a Batcher's
    #: default worker count).
    max_concurrency: int
    _codec: Codec[Any]
    #: Check a message against the gateway's rules; return its wire form. The codec's
    #: own ``prepare``, bound once: it runs once per message of a campaign.
    _prepare: Callable[[Message], Any]

    def __init__(
        self,
        *,
        password: str,
        sender: str | None,
        base_url: str,
        format: Format,
        method: HttpMethod,
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
        if not isinstance(password, str) or not password:
            raise ValidationError("password", "must be a non-empty string")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValidationError("base_url", "must be an http:// or https:// URL")
        self._password = _Secret(password)
        self.sender = sender
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._format: Format = _choice(format, "format", ("json", "xml"))  # type: ignore[assignment]
        self._method: HttpMethod = _choice(method, "method", ("POST", "GET"))  # type: ignore[assignment]
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self.retry = _check_retry(retry)
        self._transport: Transport = _make_transport(
            method=self._method,
            timeout=_as_timeout(timeout) or DEFAULT_TIMEOUT,
            limits=limits,
            max_concurrency=self.max_concurrency,
            http_client=http_client,
            http_transport=http_transport,
            transport=transport,
            proxy=proxy,
            verify=verify,
            trust_env=trust_env,
        )
        self._guard = Lifecycle(type(self).__name__)

    # -- lifecycle ---------------------------------------------------------------

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
    def format(self) -> Format:
        """``"json"`` or ``"xml"``, fixed when the client is built."""
        return self._format

    @property
    def method(self) -> HttpMethod:
        """``"POST"`` or ``"GET"``, fixed when the client is built (the transport was
        checked against it then)."""
        return self._method

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
                timeout=_as_timeout(timeout),
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
        return await _send_policy.read(
            self, request, parse, what=what, timeout=_as_timeout(timeout)
        )

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
        _as_timeout(timeout)
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
        _as_timeout(timeout)
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
