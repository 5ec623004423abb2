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
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import ClassVar, Literal, TypeVar

import anyio
import httpx

from aiosms._errors import (
    ClosedError,
    DeliveryUnknownError,
    ProviderError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import Message
from aiosms._retry import RetryPolicy
from aiosms._transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    HttpxTransport,
    Transport,
    TransportFailure,
    WireRequest,
    WireResponse,
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
    if value is None or isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValidationError(field, "must be a positive number of seconds or an httpx.Timeout")
    return httpx.Timeout(float(value))


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(map(repr, allowed))}")
    return value


def _positive_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, "must be a positive int")
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
        limits: httpx.Limits,
        retry: RetryPolicy,
        max_concurrency: int,
        http_client: httpx.AsyncClient | None,
        http_transport: httpx.AsyncBaseTransport | None,
        transport: Transport | Literal["aiohttp"] | None,
    ) -> None:
        if not isinstance(password, str) or not password:
            raise ValidationError("password", "must be a non-empty string")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValidationError("base_url", "must be an http:// or https:// URL")
        self._password = _Secret(password)
        self.sender = sender
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.format: Format = _choice(format, "format", ("json", "xml"))  # type: ignore[assignment]
        self.method: HttpMethod = _choice(method, "method", ("POST", "GET"))  # type: ignore[assignment]
        self.max_concurrency = _positive_int(max_concurrency, "max_concurrency")
        self.retry = retry
        default_timeout = _as_timeout(timeout) or DEFAULT_TIMEOUT
        if sum(x is not None for x in (http_client, http_transport, transport)) > 1:
            raise ValidationError(
                "http_client", "give at most one of http_client, http_transport and transport"
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
        self._transport: Transport = transport or HttpxTransport(
            client=http_client,
            timeout=default_timeout,
            limits=limits,
            http_transport=http_transport,
        )
        self._state = _State.UNOPENED

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self: Self) -> Self:
        if self._state is _State.OPENED:
            raise RuntimeError(f"{type(self).__name__} is already open: enter it only once")
        if self._state is _State.CLOSED:
            raise ClosedError(f"{type(self).__name__} is closed: create a new client")
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
        """Close the connection pool (not a caller-supplied httpx client). Safe to call twice."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        # Shielded so a cancelled caller still returns every pooled connection.
        with anyio.CancelScope(shield=True):
            await self._transport.aclose()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClosedError(f"{type(self).__name__} is closed: create a new client")

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
        self._check_open()
        per_call = _as_timeout(timeout)
        attempt = 0
        while True:
            error: SmsError
            retry_after: float | None = None
            try:
                response = await self._transport.request(request, timeout=per_call)
            except TransportFailure as failure:
                error = TransportError(
                    f"{self.provider} {what}: {failure.kind}",
                    kind=failure.kind,
                    may_have_been_sent=False,
                )
                transient = True
            else:
                if 200 <= response.status_code < 300:
                    try:
                        return parse(response.body)
                    except ProviderError as refused:
                        error, transient = refused, refused.transient
                else:
                    code = response.status_code
                    error = TransportError(
                        f"{self.provider} {what}: HTTP {code}",
                        kind=f"HTTP {code}",
                        status_code=code,
                        may_have_been_sent=False,
                    )
                    transient = code == 429 or code >= 500
                    retry_after = response.retry_after
            if not transient or attempt >= self.retry.read_retries:
                raise error
            await anyio.sleep(self.retry.delay(attempt, retry_after))
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

        Any other failure, and any reply that is not 2xx, is an unknown outcome.
        """
        self._check_open()
        per_call = _as_timeout(timeout)
        attempt = 0
        while True:
            try:
                response = await self._transport.request(request, timeout=per_call)
            except TransportFailure as failure:
                caught = failure
            else:
                if 200 <= response.status_code < 300:
                    return response
                raise DeliveryUnknownError(
                    f"{self.provider} {what}: HTTP {response.status_code}; "
                    "the gateway may have accepted the message(s)",
                    messages=messages,
                    kind=f"HTTP {response.status_code}",
                )
            if not caught.provably_unsent:
                raise DeliveryUnknownError(
                    f"{self.provider} {what}: {caught.kind} after the request may have left; "
                    "the gateway may have accepted the message(s)",
                    messages=messages,
                    kind=caught.kind,
                )
            if attempt >= self.retry.send_retries:
                raise TransportError(
                    f"{self.provider} {what}: {caught.kind}; nothing was sent",
                    kind=caught.kind,
                    may_have_been_sent=False,
                )
            await anyio.sleep(self.retry.delay(attempt))
            attempt += 1

    def _url(self, path: str) -> str:
        return self.base_url + path


async def fan_out(count: int, work: Callable[[int], Awaitable[None]], limit: int) -> None:
    """Run ``work(i)`` for i in range(count) with at most ``limit`` at once.

    A fixed set of worker tasks pulls indexes from one shared iterator: cheaper than
    a task and a semaphore acquisition per item. ``work`` must not raise for an
    item's own failure; it records it instead.
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
]
