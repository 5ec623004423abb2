"""Moving bytes to a gateway and back: the transport interface and its httpx default.

A transport sends one request and returns the status and body, or raises
``TransportFailure`` saying, from the *original* exception, whether the request
provably never reached the gateway. It knows nothing of gateways, retries or
models. It never lets an exception escape whose text could hold a URL (and so,
with GET, a password): failures are re-raised with a fixed text, outside the
``except`` block, so no cause or context is chained.
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import attrs
import httpx

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "HttpxTransport",
    "Transport",
    "TransportFailure",
    "WireRequest",
    "WireResponse",
]

logger = logging.getLogger("aiosms.transport")

#: Never hang forever: connect, read, write and pool waits are all bounded.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)
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
    gateway (no connection was ever made for it). ``kind`` names the original failure.
    """

    def __init__(self, kind: str, *, provably_unsent: bool, retryable: bool = True) -> None:
        super().__init__(kind)
        self.kind = kind
        self.provably_unsent = provably_unsent
        #: False when trying again cannot help (a transport that cannot run here).
        self.retryable = retryable


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


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The TLS settings of every client aiosms builds itself: httpx's defaults
    (certifi's CA bundle, certificates verified), loaded once per process.

    Loading the CA bundle costs ~16 ms of CPU; a web app that builds a client per
    request would pay it on every OTP.
    """
    return httpx.create_ssl_context(trust_env=False)


class HttpxTransport:
    """The default transport: one pooled ``httpx.AsyncClient``.

    A caller-supplied client is used as it is and never closed; either way every
    request goes with ``follow_redirects=False``, so a redirect can never replay a
    body that holds a password.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            transport=http_transport,
            trust_env=False,
            # A custom transport brings its own TLS (if any): no bundle to load then.
            verify=default_ssl_context() if http_transport is None else True,
        )
        #: Connections aiosms's own pool may open; None for a caller's client or a
        #: custom httpx transport (no pool of aiosms's to size).
        self.max_connections = (
            limits.max_connections if self._owns_client and http_transport is None else None
        )
        self._urls: dict[str, httpx.URL] = {}

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        failure: TransportFailure | None = None
        started = time.perf_counter()
        url = self._urls.get(request.url)
        if url is None:
            # Parsing a URL is a large part of httpx's cost per request: once per URL.
            url = self._urls[request.url] = httpx.URL(request.url)
        try:
            response = await self._client.request(
                request.method,
                url,
                params=request.params,
                content=request.content,
                headers=request.headers,
                follow_redirects=False,
                # Without a per-call timeout, the client's own: aiosms's client was
                # built with the default, and a caller's client keeps its own.
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.RequestError, httpx.InvalidURL, httpx.StreamError) as exc:
            # Any failure httpx may raise (a broken gzip body included): its text and
            # its request may hold a GET URL, so only its name goes on.
            failure = TransportFailure(type(exc).__name__, provably_unsent=provably_unsent(exc))
        if failure is not None:
            raise logged_failure(request, failure)
        return logged_response(
            request,
            started,
            response.status_code,
            response.content,
            response.headers.get("retry-after"),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


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
