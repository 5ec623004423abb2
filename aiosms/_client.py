"""What both gateway clients share: configuration, lifecycle, retries, fan-out.

A client owns one transport (by default one pooled httpx client) from creation
to ``aclose()``. Requests go through two doors: ``_read`` retries transient faults;
``_send`` retries only what provably never left and turns every other failure
into ``DeliveryUnknownError``. The adapters above build requests and parse
replies; nothing here knows a gateway's wire format.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

import anyio
import httpx

from aiosms._errors import (
    ClosedError,
    DeliveryUnknownError,
    MessageNotFoundError,
    ProtocolError,
    ProviderError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import DeliveryState, Message, Receipt, StatusReport
from aiosms._providers._common import (
    REFUSED_STATUSES,
    failed,
    not_sent,
    require_id,
    require_message,
    stops_the_flow,
    unexpected,
    unexpected_read,
)
from aiosms._retry import RetryPolicy
from aiosms._sharded import ProxyArg, ShardedTransport, VerifyArg, check_proxy, tls_context
from aiosms._transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    HttpxTransport,
    ReplyTooLarge,
    Transport,
    TransportFailure,
    WireRequest,
    WireResponse,
    host_of,
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
Format = Literal["json", "xml"]
HttpMethod = Literal["POST", "GET"]
TimeoutArg = float | httpx.Timeout | None

logger = logging.getLogger("aiosms")

DEFAULT_MAX_CONCURRENCY = 10


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


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


class _Secret:
    """A string that never shows itself in a repr or a traceback's locals."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"


class BaseClient:
    provider: ClassVar[str]

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
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                "retry", f"must be an aiosms.RetryPolicy or None, not {type(retry).__name__}"
            )
        self.retry = retry or RetryPolicy()
        default_timeout = _as_timeout(timeout) or DEFAULT_TIMEOUT
        limits = None if limits is None else _check_limits(limits)
        if sum(x is not None for x in (http_client, http_transport, transport)) > 1:
            raise ValidationError(
                "http_client", "give at most one of http_client, http_transport and transport"
            )
        if limits is None:
            # Unless told otherwise, one connection per request in flight.
            n = self.max_concurrency
            limits = httpx.Limits(
                max_connections=n, max_keepalive_connections=n, keepalive_expiry=30
            )
        own_pool = http_client is None and http_transport is None and transport is None
        if not own_pool and (proxy is not None or verify is not True or trust_env):
            raise ValidationError(
                "proxy" if proxy is not None else "verify" if verify is not True else "trust_env",
                "applies to aiosms's own httpx pool only: configure your client or transport",
            )
        if transport == "aiohttp":
            from aiosms._aiohttp import AiohttpTransport

            transport = AiohttpTransport(timeout=default_timeout, limits=limits)
        elif isinstance(transport, str):
            raise ValidationError("transport", "must be 'aiohttp' or a transport object")
        if self.method == "GET" and getattr(transport, "retries_idempotent_requests", False):
            raise ValidationError(
                "method",
                "GET is refused on this transport: it resends idempotent requests by itself "
                "after a dropped connection, which could send an SMS twice; use POST",
            )
        if transport is None and own_pool:
            if not isinstance(trust_env, bool):
                raise ValidationError("trust_env", "must be True or False")
            # Several small httpx pools: one large pool collapses past ~10 connections.
            transport = ShardedTransport(
                connections=limits.max_connections or self.max_concurrency,
                timeout=default_timeout,
                limits=limits,
                proxy=check_proxy(proxy),
                verify=tls_context(verify, trust_env=trust_env),
                trust_env=trust_env,
            )
        self._transport: Transport = transport or HttpxTransport(
            client=http_client,
            timeout=default_timeout,
            limits=limits,
            http_transport=http_transport,
        )
        self._state = _State.UNOPENED
        #: The event loop the client was first used in: its pooled connections belong
        #: to that loop, and writing on them from another one breaks mid-request.
        self._loop: anyio.lowlevel.EventLoopToken | None = None
        #: Set by aclose() so requests waiting to retry stop at once (made on first
        #: use: an anyio Event belongs to the running loop).
        self._closing: anyio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self: Self) -> Self:
        if self._state is _State.OPENED:
            raise RuntimeError(f"{type(self).__name__} is already open: enter it only once")
        if self._state is _State.CLOSED:
            raise ClosedError(f"{type(self).__name__} is closed: create a new client")
        self._check_runtime()
        self._check_loop()
        self._state = _State.OPENED
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
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._loop is not None and self._loop != anyio.lowlevel.current_token():
            logger.warning(
                "%s closed from another event loop than the one it was used in; "
                "its connections are left to that loop",
                type(self).__name__,
            )
            return
        if self._closing is not None:
            self._closing.set()
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
        return self._state is _State.CLOSED

    @property
    def _connection_limit(self) -> int | None:
        return getattr(self._transport, "max_connections", None)

    @property
    def _in_flight_limit(self) -> int:
        # Requests beyond the pool's connections would only queue for one. aiosms's own
        # pool has one connection per request in flight unless ``limits`` says fewer.
        return min(self.max_concurrency, self._connection_limit or self.max_concurrency)

    def _check_runtime(self) -> None:
        # A transport that cannot run on this event loop says so on entry, not later.
        check = getattr(self._transport, "check_runtime", None)
        if check is not None:
            check()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClosedError(f"{type(self).__name__} is closed: create a new client")
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
                f"{type(self).__name__} was first used in another event loop; its "
                "connections belong to that loop: create one client per event loop "
                "(for example one per asyncio.run())"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sender={self.sender!r}, base_url={self.base_url!r})"

    # -- requests ----------------------------------------------------------------

    async def _read(
        self,
        request: WireRequest,
        parse: Callable[[bytes], T],
        *,
        what: str,
        timeout: TimeoutArg = None,
    ) -> T:
        """Send a read and parse its reply, retrying transient faults."""
        per_call = _as_timeout(timeout)
        attempt = 0
        while True:
            # Before every attempt: aclose() may have come during the backoff.
            self._check_open()
            error: SmsError
            retry_after: float | None = None
            failure: TransportFailure | None = None
            try:
                response = await self._transport.request(request, timeout=per_call)
            except TransportFailure as caught:
                failure = caught
            except Exception as unexpected:
                # Kept by name only: its frames and text may hold the request.
                failure = _unexpected(unexpected, request)
            if failure is not None:
                transient = failure.retryable
                if isinstance(failure, ReplyTooLarge):
                    error = ProtocolError(f"{self.provider} {what}: {failure.describe()}")
                else:
                    error = TransportError(
                        f"{self.provider} {what}: {failure.describe()}",
                        kind=failure.kind,
                        may_have_been_sent=False,
                    )
            elif 200 <= response.status_code < 300:
                try:
                    return parse(response.body)
                except ProviderError as refused:
                    error, transient = refused, refused.transient
            else:
                code = response.status_code
                error = TransportError(
                    f"{self.provider} {what}: HTTP {code} from {host_of(request.url)}",
                    kind=f"HTTP {code}",
                    status_code=code,
                    may_have_been_sent=False,
                )
                transient = code == 429 or code >= 500
                retry_after = response.retry_after
            if not transient or attempt >= self.retry.read_retries:
                raise error
            await self._backoff(self.retry.delay(attempt, retry_after))
            attempt += 1

    async def _send(
        self,
        request: WireRequest,
        *,
        messages: Sequence[Message],
        what: str,
        timeout: TimeoutArg = None,
    ) -> WireResponse:
        """Send a request that sends SMS; retry only what provably never left.

        HTTP 401, 403, 404 and 405 are refusals before any gateway logic (not sent);
        429 is a refusal retried within the send budget; any other failure and any
        other reply that is not 2xx is an unknown outcome.
        """
        per_call = _as_timeout(timeout)
        attempt = 0
        while True:
            # Before every attempt: aclose() may have come during the backoff, and a
            # closed transport must never be asked (nothing was sent: ClosedError).
            self._check_open()
            try:
                response = await self._transport.request(request, timeout=per_call)
            except TransportFailure as failure:
                caught = failure
            except Exception as unexpected:
                # Whatever else a transport raises may come after the request left.
                caught = _unexpected(unexpected, request)
            else:
                code = response.status_code
                if 200 <= code < 300:
                    return response
                if code not in REFUSED_STATUSES and code != 429:
                    raise DeliveryUnknownError(
                        f"{self.provider} {what}: HTTP {code} from {host_of(request.url)}; "
                        "the gateway may have accepted the message(s)",
                        messages=messages,
                        kind=f"HTTP {code}",
                    )
                refusal = TransportError(
                    f"{self.provider} {what}: HTTP {code} from {host_of(request.url)}; "
                    "the server refused the request, nothing was sent",
                    kind=f"HTTP {code}",
                    status_code=code,
                    may_have_been_sent=False,
                )
                if code != 429 or attempt >= self.retry.send_retries:
                    raise refusal
                await self._backoff(self.retry.delay(attempt, response.retry_after))
                attempt += 1
                continue
            if not caught.provably_unsent:
                raise DeliveryUnknownError(
                    f"{self.provider} {what}: {caught.describe()} after the request may "
                    "have left; the gateway may have accepted the message(s)",
                    messages=messages,
                    kind=caught.kind,
                )
            if self._state is _State.CLOSED:
                raise ClosedError(
                    f"{type(self).__name__} was closed while sending; nothing was sent"
                )
            if attempt >= self.retry.send_retries or not caught.retryable:
                raise TransportError(
                    f"{self.provider} {what}: {caught.describe()}; nothing was sent",
                    kind=caught.kind,
                    may_have_been_sent=False,
                )
            await self._backoff(self.retry.delay(attempt))
            attempt += 1

    async def _backoff(self, seconds: float) -> None:
        """Wait before a retry, or less if the client is closed meanwhile (the next
        attempt then stops with ``ClosedError``)."""
        if self._state is _State.CLOSED:
            return
        if self._closing is None:
            self._closing = anyio.Event()
        with anyio.move_on_after(seconds):
            await self._closing.wait()

    def _url(self, path: str) -> str:
        return self.base_url + path

    # -- what each gateway adapter provides (a Batcher drives these too) ---------------

    @property
    def _batch_limit(self) -> int | None:
        """Most messages one request can carry (None: as many as the caller packs)."""
        return 1

    @property
    def _send_many_size(self) -> int:
        """Messages per request in ``send_many``."""
        return self._batch_limit or 1

    @property
    def _status_many_size(self) -> int:
        """Ids per request in ``status_many``: as many as messages per send request."""
        return self._send_many_size

    def _prepare(self, message: Message) -> Any:
        """Check a message against the gateway's rules; return its wire form."""
        raise NotImplementedError

    async def _send_batch(
        self, messages: list[Message], wires: list[Any], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send one request's messages: one receipt each, never raising for their failures."""
        raise NotImplementedError

    async def _status_batch(self, ids: list[str], timeout: TimeoutArg) -> list[StatusReport]:
        """Ask about one request's ids; an unknown id is a REJECTED report, not an error."""
        raise NotImplementedError

    # -- many at once ------------------------------------------------------------------

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
        batch = list(messages)
        for message in batch:
            require_message(message)
        self._check_open()
        receipts: list[Receipt | None] = [None] * len(batch)
        ready: list[tuple[int, Message, Any]] = []
        for index, message in enumerate(batch):
            try:
                ready.append((index, message, self._prepare(message)))
            except ValidationError as invalid:
                receipts[index] = failed(message, invalid.with_traceback(None))
        size = self._send_many_size
        packets = [ready[i : i + size] for i in range(0, len(ready), size)]
        stop: list[SmsError] = []

        async def send_packet(number: int) -> None:
            packet = packets[number]
            if stop:
                for index, message, _ in packet:
                    receipts[index] = failed(message, not_sent(stop[0]))
                return
            messages = [m for _, m, _ in packet]
            try:
                results = await self._send_batch(messages, [w for _, _, w in packet], timeout)
            except Exception as error:
                # The adapters keep their failures to their packet; should one slip
                # through, it must not cancel the other packets or lose their receipts.
                results = unexpected(self.provider, messages, error)
            for (index, _, _), receipt in zip(packet, results, strict=True):
                receipts[index] = receipt
                if stops_the_flow(receipt.error) and not stop:
                    stop.append(receipt.error)

        await fan_out(len(packets), send_packet, self._in_flight_limit)
        done = [r for r in receipts if r is not None]
        assert len(done) == len(batch), "every message has exactly one receipt"
        return done

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
        ids = [require_id(i) for i in message_ids]
        self._check_open()
        size = self._status_many_size
        chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
        results: list[list[StatusReport]] = [[] for _ in chunks]
        stop: list[SmsError] = []

        async def ask(number: int) -> None:
            chunk = chunks[number]
            error: SmsError
            if stop:
                error = stop[0].clone()
            else:
                try:
                    reports = await self._status_batch(chunk, timeout)
                except SmsError as caught:
                    error = caught.with_traceback(None)
                    if stops_the_flow(error) and not stop:
                        stop.append(error)
                except Exception as caught:
                    # A surprise keeps to its own ids, never cancels the other requests.
                    error = unexpected_read(self.provider, "status", caught)
                else:
                    results[number] = reports
                    return
            results[number] = [_failed_report(i, error, len(chunk)) for i in chunk]

        await fan_out(len(chunks), ask, self._in_flight_limit)
        return [report for chunk in results for report in chunk]


def _failed_report(message_id: str, error: SmsError, asked: int) -> StatusReport:
    """The report of an id whose request failed as a whole."""
    # "Not found" for a request about this id alone is this id's final answer; for a
    # request about several, nobody can tell which of them the gateway meant.
    found_missing = isinstance(error, MessageNotFoundError) and asked == 1
    state = DeliveryState.REJECTED if found_missing else DeliveryState.UNKNOWN
    # No code: a report's code is the message's state, and the request never gave one.
    return StatusReport(message_id, state, error=error.clone())


def _unexpected(exc: Exception, request: WireRequest) -> TransportFailure:
    """A failure for an exception a transport should not have let out: the request
    may have left, and only the exception's name is kept."""
    logger.debug("the transport raised %s unexpectedly", type(exc).__name__)
    return TransportFailure(type(exc).__name__, provably_unsent=False, host=host_of(request.url))


async def fan_out(count: int, work: Callable[[int], Awaitable[None]], limit: int) -> None:
    """Run ``work(i)`` for i in range(count) with at most ``limit`` at once.

    A fixed set of worker tasks pulls indexes from one shared iterator: cheaper than
    a task and a semaphore acquisition per item. ``work`` must not raise anything but
    cancellation: one item's exception would cancel every other item in flight, so
    each item records its own failure instead.
    """
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            await work(index)

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, count)):
            tg.start_soon(worker)


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
