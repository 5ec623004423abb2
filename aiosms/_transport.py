"""Moving bytes to a gateway and back: the transport interface and its httpx default.

A transport sends one request and returns the status and body, or raises
``TransportFailure`` saying, from the *original* exception, whether the request
provably never reached the gateway. It knows nothing of gateways, retries or
models. Every request has an overall deadline (pool wait, connect, write and the
whole read) and every reply a size cap (``MAX_REPLY_BYTES``). It never lets an
exception escape whose text could hold a URL (and so, with GET, a password), nor
one carrying the HTTP library's frames: failures are re-raised with a fixed text
naming only the host and the reason, outside the ``except`` block, so no cause or
context is chained.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import select
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
import attrs
import httpcore
import httpx

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "MAX_REPLY_BYTES",
    "HttpxTransport",
    "ReplyTooLarge",
    "Transport",
    "TransportFailure",
    "WireRequest",
    "WireResponse",
]

logger = logging.getLogger("aiosms.transport")

#: Never hang forever: connect, read, write and pool waits are all bounded, and so
#: is a request as a whole: by the largest of these parts (15 s), see ``deadline_of``.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)
#: The largest reply body aiosms reads (1 MiB, after decompression). Gateway replies
#: are a few kilobytes even for a packet of hundreds of messages; anything larger is
#: not a reply (a proxy's page, a runaway stream) and is abandoned unread past the cap.
MAX_REPLY_BYTES = 1024 * 1024
#: httpx's pool degrades as it grows (it rescans every connection per request);
#: ten connections kept alive serve the default concurrency of ten.
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=30)


@attrs.frozen(slots=True, repr=False)
class WireRequest:
    method: str
    url: str
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        # The query and the body hold the password: show neither.
        return f"WireRequest({self.method} {_path(self.url)})"


@attrs.frozen(slots=True)
class WireResponse:
    status_code: int
    body: bytes
    retry_after: float | None = None


class TransportFailure(Exception):
    """A request failed in the network.

    ``provably_unsent`` is True only when the request cannot have reached the
    gateway (no connection was ever made for it). ``kind`` names the original failure,
    ``host`` the server it was for (never the path, query or body), ``reason`` what
    went wrong in plain words ("connection refused", "DNS lookup failed" …) or "".
    """

    def __init__(
        self,
        kind: str,
        *,
        provably_unsent: bool,
        retryable: bool = True,
        host: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.provably_unsent = provably_unsent
        #: False when trying again cannot help (a transport that cannot run here).
        self.retryable = retryable
        self.host = host
        self.reason = reason

    def describe(self) -> str:
        """``"ConnectError to my-sms.ru:443 (connection refused)"``: safe to show."""
        text = self.kind
        if self.host:
            text += f" to {self.host}"
        if self.reason:
            text += f" ({self.reason})"
        return text


class ReplyTooLarge(TransportFailure):
    """The reply body was larger than ``MAX_REPLY_BYTES``: abandoned unread.

    The gateway answered, so the request was not unsent; what it said is unknown.
    """


class Transport(Protocol):
    """What a gateway adapter needs from the network."""

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse: ...

    async def aclose(self) -> None: ...


_UNSENT_HTTPX = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def provably_unsent(exc: BaseException) -> bool:
    """Whether an httpx exception proves the request never reached the server.

    The httpx class alone is not proof: a transport may map a server disconnect
    to ``ConnectTimeout`` (httpx-aiohttp does). So the original exception, the
    cause httpx chained, must itself be a connect or pool failure.
    """
    if not isinstance(exc, _UNSENT_HTTPX):
        return False
    # A transport that maps an exception without "from" still leaves it as the context.
    cause = exc.__cause__ or exc.__context__
    if cause is None:
        # Raised as such, with nothing behind it, by the transport itself.
        return True
    module = type(cause).__module__
    if module.startswith("httpcore"):
        import httpcore

        return isinstance(
            cause, (httpcore.ConnectError, httpcore.ConnectTimeout, httpcore.PoolTimeout)
        )
    if module.startswith("aiohttp"):
        # Only a failure to establish the connection is proof; a server
        # disconnect after the request was written is not.
        return type(cause).__name__ in {"ClientConnectorError", "ClientConnectorDNSError"}
    return False


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def deadline_of(timeout: httpx.Timeout) -> float | None:
    """The overall bound of one request attempt under ``timeout``.

    A float timeout ``t`` becomes ``httpx.Timeout(t)``: every phase and the whole
    attempt are bounded by ``t``. For an ``httpx.Timeout`` the whole attempt (pool
    wait, connect, write and the complete read) is bounded by the largest of its
    parts; ``httpx.Timeout(None)`` turns every bound off, this one included.
    """
    parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(parts) if parts else None


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL: never its user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


#: Plain words for the timeouts a request can hit, by the phase it was in.
_TIMEOUT_REASONS = {
    "PoolTimeout": "no pooled connection became free in time",
    "ConnectTimeout": "connecting timed out",
    "WriteTimeout": "sending the request timed out",
    "ReadTimeout": "the reply did not come in time",
}


def failure_reason(exc: BaseException) -> str:
    """Why a request failed, in plain words, from the exception and what it chains.

    Only fixed words come out: an exception's own text may hold a URL.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    found: list[str] = []
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror) or type(current).__name__ == (
            "ClientConnectorDNSError"
        ):
            return "DNS lookup failed"
        if isinstance(current, ssl.SSLCertVerificationError) or type(current).__name__ == (
            "ClientConnectorCertificateError"
        ):
            return "TLS certificate not trusted"
        if isinstance(current, ssl.SSLError) or type(current).__name__ == "ClientSSLError":
            found.append("TLS handshake failed")
        elif isinstance(current, ConnectionRefusedError):
            found.append("connection refused")
        elif isinstance(current, ConnectionResetError):
            found.append("connection reset")
        elif isinstance(current, (TimeoutError, httpx.TimeoutException)):
            found.append(_TIMEOUT_REASONS.get(type(current).__name__, "timed out"))
        elif isinstance(current, (httpx.RemoteProtocolError, httpx.ReadError)) or (
            type(current).__name__ in {"ServerDisconnectedError", "ClientPayloadError"}
        ):
            found.append("the connection closed before a full reply")
        grouped = getattr(current, "exceptions", None)
        if isinstance(grouped, tuple):
            # An exception group (anyio's connect attempts under trio).
            pending.extend(e for e in grouped if isinstance(e, BaseException))
        for inner in (
            current.__cause__,
            current.__context__,
            getattr(current, "os_error", None),
            getattr(current, "certificate_error", None),
        ):
            if isinstance(inner, BaseException):
                pending.append(inner)
    # The innermost cause is the most specific one.
    return found[-1] if found else ""


class _Progress:
    """How far an httpx transport got with one request, from its trace events.

    ``phase`` stays None until the first event: for httpx's own connection pool that
    means the request still waits for a pooled connection; it then names connection
    steps until the first byte of the request is about to be written.
    """

    __slots__ = ("phase",)

    def __init__(self) -> None:
        self.phase: str | None = None

    async def __call__(self, name: str, info: Mapping[str, object]) -> None:
        self.phase = name

    def timeout_kind(self, pool_reports_progress: bool) -> tuple[str, bool]:
        """The timeout this phase amounts to, and whether nothing was written yet."""
        phase = self.phase
        if phase is None:
            if pool_reports_progress:
                return "PoolTimeout", True
            # No event from a transport that may never send any: nothing is known.
            return "Timeout", False
        if phase.startswith("connection."):
            return "ConnectTimeout", True
        if "send_request" in phase:
            return "WriteTimeout", False
        return "ReadTimeout", False


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The TLS settings of every client aiosms builds itself: httpx's defaults
    (certifi's CA bundle, certificates verified), loaded once per process.

    Loading the CA bundle costs ~16 ms of CPU; a web app that builds a client per
    request would pay it on every OTP.
    """
    return httpx.create_ssl_context(trust_env=False)


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _GatewayClient(httpx.AsyncClient):
    """aiosms's own httpx client: it keeps no cookies.

    Neither gateway has a session (every request carries its credentials), and
    reading ``Set-Cookie`` costs httpx a urllib request and an email message per
    reply (~5% of the CPU of a request); a cookie from a proxy is not replayed either.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("aiosms's own httpx client keeps no cookies")


class _Stream(httpcore.AsyncNetworkStream):
    """One connection's network stream, as httpcore sees it, at less CPU per request.

    - The head of a request is held until its body (or its empty end) follows, and
      both go in one write: one send, one write deadline, one segment on the wire,
      instead of two of each. A read sends whatever is still held first (a proxy's
      handshake writes then reads). The bytes go out in the request's
      ``send_request_body`` step, so a deadline there is still a write timeout.
    - Whether an idle connection's socket is readable (the pool asks for every
      connection on every request) is polled on the socket found once, where
      anyio would call ``getpeername`` and build a new poll object per question.
    """

    __slots__ = ("_held", "_held_timeout", "_hold", "_inner", "_poll")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._hold = True
        self._held = b""
        self._held_timeout: float | None = None
        self._poll: Any = None
        sock = inner.get_extra_info("socket")
        poll = getattr(select, "poll", None)
        if sock is not None and poll is not None:
            self._poll = poll()
            self._poll.register(sock.fileno(), select.POLLIN)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._hold:
            self._hold = False
            self._held, self._held_timeout = buffer, timeout
            return
        if self._held:
            buffer, self._held = self._held + buffer, b""
        await self._inner.write(buffer, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            held, self._held = self._held, b""
            await self._inner.write(held, self._held_timeout)
        # What is written after a read is the head of the next request.
        self._hold = True
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held = b""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._held:
            held, self._held = self._held, b""
            await self._inner.write(held, self._held_timeout)
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._poll is not None:
            # httpcore asks only while the connection is idle, its socket open; a
            # closed descriptor would poll as invalid, which reads as readable: a
            # disconnect, as httpcore concludes itself.
            return bool(self._poll.poll(0))
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, its streams wrapped in ``_Stream``."""

    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _QuickLock:
    """A lock of one of httpcore's connections, taken without yielding when free.

    httpcore's own lock yields to the event loop on every acquisition, shielded
    from cancellation: a trip through the scheduler that cancels nothing. Its
    connections take three per request (the connection's and twice the HTTP/1.1
    state's), all free save in a race httpcore's pool does not run. Cancellation
    is seen at the same point as before: an acquisition still raises at once in a
    cancelled scope, and a taken lock still waits in turn.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = anyio.Lock(fast_acquire=True)

    async def __aenter__(self) -> _QuickLock:
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


#: httpcore's own async lock class; None if a later httpcore moved it (its locks
#: then stay as they are).
_HTTPCORE_LOCK: object = getattr(getattr(httpcore, "_synchronization", None), "AsyncLock", None)


def _quicken(owner: object, name: str) -> None:
    # Only a lock of httpcore's own kind, never yet used, is replaced.
    lock = getattr(owner, name, None)
    if (
        _HTTPCORE_LOCK is not None
        and type(lock) is _HTTPCORE_LOCK
        and not getattr(lock, "_backend", "")
    ):
        setattr(owner, name, _QuickLock())


class _Connection(httpcore.AsyncHTTPConnection):
    """httpcore's connection, its locks and its HTTP/1.1 connection's ``_QuickLock``.

    Made from httpcore's own by changing its class (``_Pool.create_connection``);
    the HTTP/1.1 connection it builds once connected gets its lock as it is stored.
    """

    @property
    def _connection(self) -> Any:
        return self.__dict__["_connection"]

    @_connection.setter
    def _connection(self, connection: Any) -> None:
        if type(connection) is httpcore.AsyncHTTP11Connection:
            _quicken(connection, "_state_lock")
        self.__dict__["_connection"] = connection


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool at fewer trips through the event loop per request.

    - Its direct connections take their locks without yielding (``_QuickLock``).
    - Closing no connection enters no shielded cancel scope (httpcore enters one
      twice a request to close the empty list of expired connections).
    """

    def _assign_requests_to_connections(self) -> list[Any]:
        # A request cancelled after the pool gave it a new connection, before that
        # connection connected, leaves it unconnected and used by no request: httpcore
        # keeps it forever (encode/httpcore#1093), and enough of them leave every later
        # request waiting for a slot until its pool timeout. It has no socket; only the
        # request it was given to could ever have connected it.
        given = {id(r.connection) for r in self._requests if r.connection is not None}
        unused: list[Any] = [
            c
            for c in self._connections
            if type(c) in (httpcore.AsyncHTTPConnection, _Connection)
            and vars(c).get("_connection", True) is None
            and vars(c).get("_connect_failed") is False
            and id(c) not in given
        ]
        for connection in unused:
            self._connections.remove(connection)
        return [*unused, *super()._assign_requests_to_connections()]

    def create_connection(self, origin: httpcore.Origin) -> Any:
        connection = super().create_connection(origin)
        if type(connection) is httpcore.AsyncHTTPConnection and "_connection" in vars(connection):
            connection.__class__ = _Connection
            _quicken(connection, "_request_lock")
        return connection

    # Only over httpcore's own coroutine of that name: renamed or made synchronous in a
    # later httpcore, its own stays in place.
    if inspect.iscoroutinefunction(
        getattr(httpcore.AsyncConnectionPool, "_close_connections", None)
    ):

        async def _close_connections(self, closing: list[Any]) -> None:
            if closing:
                await super()._close_connections(closing)


def _wrap_backends(client: httpx.AsyncClient) -> None:
    """Give every httpcore pool of aiosms's own client the ``_Backend``, and the
    direct one the ``_Pool``'s behaviour.

    httpx has no option for httpcore's ``network_backend``, so the pools it built
    (the direct one and any proxy's) get it here. A pool of another shape is left
    as it is: it works as before, only at httpcore's own cost. The direct pool,
    exactly httpcore's, becomes a ``_Pool`` by changing its class: it has no state
    of its own.
    """
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if isinstance(inner, httpcore.AsyncNetworkBackend) and not isinstance(inner, _Backend):
            pool._network_backend = _Backend(inner)  # type: ignore[union-attr]
        if type(pool) is httpcore.AsyncConnectionPool:
            pool.__class__ = _Pool


def step_bounds(timeout: httpx.Timeout) -> dict[str, float | None]:
    """httpcore's bound per step under ``timeout``, less those its deadline makes moot.

    A step allowed as long as the whole request, or longer, can never run out first:
    the request's deadline (``deadline_of``), started earlier, ends it and names the
    step all the same. Each bound costs httpcore a timer per read or write, so only
    those that can fire first are set.
    """
    deadline = deadline_of(timeout)
    bounds = timeout.as_dict()
    if deadline is not None:
        for step, bound in bounds.items():
            if bound is not None and bound >= deadline:
                bounds[step] = None
    return bounds


def closed_failure(url: str) -> TransportFailure:
    """The failure of a request on a closed pool: nothing left, nothing will."""
    return TransportFailure(
        "ClientClosed",
        provably_unsent=True,
        retryable=False,
        host=host_of(url),
        reason="the connection pool is closed",
    )


def _httpx_failure(exc: Exception, url: str) -> TransportFailure:
    """What an exception out of httpx amounts to, without its text or frames."""
    if isinstance(exc, ReplyTooLarge):
        exc.host = host_of(url)
        # Raised from within the HTTP library's frames, whose locals hold the
        # request: none of them goes on.
        return exc.with_traceback(None)
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        # Refused before any connection was made; trying again cannot help.
        return TransportFailure(
            type(exc).__name__,
            provably_unsent=True,
            retryable=False,
            host=host_of(url),
            reason="the URL cannot be used",
        )
    # Any failure httpx may raise (a broken gzip body included) has a text and a
    # request that may hold a GET URL, so only its name goes on. Whatever else the
    # HTTP stack raises (a closed event loop, a bug) may come after the request
    # left, and its frames may hold the password.
    sent_proof = isinstance(exc, (httpx.RequestError, httpx.StreamError)) and provably_unsent(exc)
    return TransportFailure(
        type(exc).__name__,
        provably_unsent=sent_proof,
        host=host_of(url),
        reason=failure_reason(exc),
    )


class HttpxTransport:
    """The default transport: one pooled ``httpx.AsyncClient``.

    A caller-supplied client is used as it is and never closed; either way no
    redirect is ever followed (a caller's client sends with ``follow_redirects=False``,
    aiosms's own hands its requests straight to its httpx transport, past the
    redirect handling), so a redirect can never replay a body that holds a
    password. Each request has an overall deadline
    (``deadline_of`` its timeout) and its reply is read up to ``MAX_REPLY_BYTES``.
    It keeps no state beyond its own pool, so a wrapper may compose several.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        http_transport: httpx.AsyncBaseTransport | None = None,
        proxy: httpx.Proxy | None = None,
        verify: ssl.SSLContext | None = None,
        trust_env: bool = False,
    ) -> None:
        self._owns_client = client is None
        if verify is None:
            # A custom transport brings its own TLS (if any): no bundle to load then.
            verify = default_ssl_context() if http_transport is None else None
        self._client = client or _GatewayClient(
            timeout=timeout,
            limits=limits,
            transport=http_transport,
            proxy=proxy,
            trust_env=trust_env,
            verify=verify if verify is not None else True,
        )
        if self._owns_client and http_transport is None:
            _wrap_backends(self._client)
        #: Connections aiosms's own pool may open; None for a caller's client or a
        #: custom httpx transport (no pool of aiosms's to size).
        self.max_connections = (
            limits.max_connections if self._owns_client and http_transport is None else None
        )
        self._urls: dict[str, httpx.URL] = {}
        #: The httpx transport of aiosms's own client for each URL (see ``_exchange``).
        self._routes: dict[str, httpx.AsyncBaseTransport] = {}
        self._deadline = deadline_of(self._client.timeout)
        #: Only httpx's own connection pool is known to report trace events from the
        #: moment it hands out a connection (a custom transport may report none).
        self._traced = self._owns_client and http_transport is None
        #: httpcore's bounds per step for aiosms's own pool (``step_bounds``); a
        #: caller's client keeps its own, whatever its transport does with them.
        self._bounds = step_bounds(self._client.timeout) if self._traced else None
        #: The headers of aiosms's own requests but their length, by URL and kind.
        self._heads: dict[tuple[Any, ...], httpx.Headers] = {}

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        """Send one request within its deadline; return its status and capped body."""
        started = time.perf_counter()
        if self._client.is_closed:
            # httpx would raise a bare RuntimeError; nothing can leave a closed pool.
            raise logged_failure(request, closed_failure(request.url))
        deadline = self._deadline if timeout is None else deadline_of(timeout)
        # httpcore reports each step of a request: the only way to tell, when the
        # deadline cuts a request short, whether any byte of it was written.
        progress = _Progress()
        failure: TransportFailure | None = None
        status, body, retry_after = 0, b"", None
        with anyio.move_on_after(deadline if deadline is not None else math.inf) as scope:
            try:
                status, body, retry_after = await self._exchange(request, timeout, progress)
            except Exception as exc:
                failure = _httpx_failure(exc, request.url)
        if scope.cancelled_caught or (scope.cancel_called and failure is not None):
            kind, unsent = progress.timeout_kind(self._traced)
            failure = TransportFailure(
                kind,
                provably_unsent=unsent,
                host=host_of(request.url),
                reason=f"the request's deadline of {deadline:g} s passed",
            )
        if failure is not None:
            # Raised here, outside the ``except`` block: no cause or context chained.
            raise logged_failure(request, failure)
        return logged_response(request, started, status, body, retry_after)

    async def _exchange(
        self, request: WireRequest, timeout: httpx.Timeout | None, progress: _Progress
    ) -> tuple[int, bytes, str | None]:
        url = self._urls.get(request.url)
        if url is None:
            # Parsing a URL is a large part of httpx's cost per request: once per URL.
            url = self._urls[request.url] = httpx.URL(request.url)
        route: httpx.AsyncBaseTransport | None = None
        if self._bounds is not None:
            bounds = self._bounds if timeout is None else step_bounds(timeout)
            http_request = self._own_request(request, url, {"trace": progress, "timeout": bounds})
            # Straight to the pool (or the proxy's) that ``send`` would pick: what
            # ``send`` adds around it (auth, redirects, hooks, cookies, its timer and
            # a log line) is nothing for this client but an async generator, four
            # coroutines and a stream wrapper per request. A URL with user info
            # goes through ``send``, which turns it into basic auth.
            route = self._routes.get(request.url)
            if route is None and not url.userinfo:
                # A private method of httpx: without it, every request goes through
                # ``send`` as before, rather than failing as if it may have left.
                pick = getattr(self._client, "_transport_for_url", None)
                if pick is not None:
                    route = self._routes[request.url] = pick(url)
        else:
            http_request = self._client.build_request(
                request.method,
                url,
                params=request.params,
                content=request.content,
                headers=request.headers,
                # Without a per-call timeout, a caller's client keeps its own.
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
                extensions={"trace": progress},
            )
            http_request.stream = _Body(request.content or b"")
        if route is not None:
            response = await route.handle_async_request(http_request)
        else:
            response = await self._client.send(http_request, follow_redirects=False, stream=True)
        try:
            body = await read_capped(response, streamed=self._traced)
        finally:
            try:
                await response.aclose()
            finally:
                # From ``send``, httpx's response and its stream refer to each other:
                # a cycle that only the garbage collector frees, ~40 objects a request.
                # Past ~100 requests in flight the collections cost more than 10% of
                # the CPU, growing with the live heap; dropping the stream frees all
                # at once.
                response.stream = _SPENT
        return response.status_code, body, response.headers.get("retry-after")

    def _own_request(
        self, request: WireRequest, url: httpx.URL, extensions: dict[str, Any]
    ) -> httpx.Request:
        """The request aiosms's own client would build, its fixed headers merged once.

        The client has no base URL, parameters, cookies or auth of its own, so its
        ``build_request`` only merges its default headers with the request's and adds
        ``Host`` and ``Content-Length``: the same for every request to a URL but the
        body's length, which alone is set per request.
        """
        content = request.content or b""
        key = (request.url, request.method, bool(content), *(request.headers or {}).items())
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = self._client.build_request(
                request.method, url, content=content, headers=request.headers
            ).headers
            if content:
                del head["Content-Length"]
        http_request = httpx.Request(
            request.method,
            url,
            params=request.params,
            headers=head,
            stream=_Body(content),
            extensions=extensions,
        )
        if content:
            http_request.headers["Content-Length"] = str(len(content))
        return http_request

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class _Body(httpx.AsyncByteStream):
    """A request body whose iteration holds no async generator.

    httpx's own body stream yields from an async generator: when a deadline cancels
    the request while it is being written, that generator is left suspended and is
    finalised later by the garbage collector (trio warns of it). A plain iterator
    object has nothing to finalise.
    """

    __slots__ = ("_content", "_sent")

    def __init__(self, content: bytes) -> None:
        self._content = content
        self._sent = False

    def __aiter__(self) -> _Body:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:
        if self._sent or not self._content:
            raise StopAsyncIteration
        self._sent = True
        return self._content


#: What a response's stream becomes once read and closed (see ``_exchange``).
_SPENT = httpx.ByteStream(b"")


async def read_capped(response: httpx.Response, *, streamed: bool = False) -> bytes:
    """The response body, or ``ReplyTooLarge`` once it passes ``MAX_REPLY_BYTES``.

    ``streamed``: the body is known to come from the network unread (httpx's own
    pool), never from a response built with its content, which is already read.
    """
    declared = response.headers.get("content-length", "")
    encoded = "content-encoding" in response.headers
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES and not encoded:
        raise too_large()
    stream = response.stream
    if (
        streamed
        and declared.isdigit()
        and not encoded
        # With a transfer coding the body is framed by it, not by its declared length.
        and "transfer-encoding" not in response.headers
        and isinstance(stream, httpx.AsyncByteStream)
    ):
        # httpcore's HTTP/1.1 reader ends a body at its declared length, within the
        # cap: nothing to cut short, so no cancel scope, and the raw stream itself
        # is read, one async generator fewer than through the response.
        whole = b"".join([chunk async for chunk in stream])
        if len(whole) > MAX_REPLY_BYTES:
            raise too_large()
        return whole
    # An unencoded body from the network needs no decoder: one generator fewer.
    body = response.aiter_raw() if streamed and not encoded else response.aiter_bytes()
    chunks: list[bytes] = []
    size = 0
    # Past the cap the read is cancelled, not abandoned: the cancellation rises from
    # the network read through every one of httpx's nested stream generators, so
    # each ends there and then (an abandoned one is finalised later, with a warning
    # under trio) and the connection is closed, not returned to the pool.
    with anyio.CancelScope() as cap:
        async for chunk in body:
            if cap.cancel_called:
                continue
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                chunks.clear()
                cap.cancel()
                continue
            chunks.append(chunk)
    if cap.cancel_called:
        raise too_large()
    return b"".join(chunks)


def too_large() -> ReplyTooLarge:
    """The failure of a reply past ``MAX_REPLY_BYTES`` (both transports raise it)."""
    return ReplyTooLarge(
        "ReplyTooLarge",
        provably_unsent=False,
        retryable=False,
        reason=f"the reply is larger than {MAX_REPLY_BYTES} bytes",
    )


def _path(url: str) -> str:
    # Only the path goes to the log: a query string may hold credentials.
    return urlsplit(url).path


def logged_failure(request: WireRequest, failure: TransportFailure) -> TransportFailure:
    """Log a failed request (method and path only) and return the failure to raise."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s failed: %s", request.method, _path(request.url), failure.kind)
    return failure


def logged_response(
    request: WireRequest, started: float, status: int, body: bytes, retry_after: str | None
) -> WireResponse:
    """Log a finished request (method, path, status, time) and build its response."""
    if logger.isEnabledFor(logging.DEBUG):
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug("%s %s -> %d in %.1f ms", request.method, _path(request.url), status, elapsed)
    return WireResponse(status, body, parse_retry_after(retry_after))
