"""An optional transport driving aiohttp directly (asyncio only): ``aiosms[aiohttp]``.

aiohttp's client layer costs far less per request than httpx's, which matters for
1000sms fan-out (one request per message). Two aiohttp habits need care here:

- It retries an idempotent request by itself when a kept-alive connection turns out
  dead. A GET that sends an SMS could then go out twice, so clients refuse
  ``method="GET"`` on this transport (``retries_idempotent_requests``).
- "Provably unsent" is decided from aiohttp's own exception: only a failure to
  establish the connection (``ClientConnectorError``, ``ConnectionTimeoutError``)
  proves the request never left. A server disconnect never does.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from aiosms._transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    MAX_REPLY_BYTES,
    ReplyTooLarge,
    TransportFailure,
    WireRequest,
    WireResponse,
    closed_failure,
    deadline_of,
    failure_reason,
    host_of,
    logged_failure,
    logged_response,
    too_large,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport"]

#: How far past the deadline aiohttp's overall timer fires (see ``_client_timeout``).
_BACKSTOP_GRACE = 0.05


def _client_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    import aiohttp

    # aiohttp's "connect" covers waiting for a pooled connection and connecting;
    # "sock_read" bounds each wait for reply bytes; "total" is the request's overall
    # deadline (see ``deadline_of``), so a reply trickled byte by byte ends too.
    deadline = deadline_of(timeout)
    pool = timeout.pool or 0.0
    connect = None if timeout.connect is None else timeout.connect + pool
    if connect is not None and deadline is not None:
        # Running out while still connecting stays provably unsent where it can.
        connect = min(connect, deadline)
    return aiohttp.ClientTimeout(
        # A step's own bound that runs out with the deadline names the step (a read
        # stall is a SocketTimeoutError, a pool wait a ConnectionTimeoutError, which
        # proves the request unsent): the overall timer is the backstop behind them.
        total=None if deadline is None else deadline + _BACKSTOP_GRACE,
        connect=connect,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
        # aiohttp rounds bounds of 5 s and more up to a whole second by default.
        ceil_threshold=math.inf,
    )


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The response body, or ``ReplyTooLarge`` once it passes ``MAX_REPLY_BYTES``."""
    declared = response.content_length
    if declared is not None and "content-encoding" not in response.headers:
        if declared > MAX_REPLY_BYTES:
            raise too_large()
        # The common case: a small reply of known length, read in one call.
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _timeout_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        # aiohttp's overall timer and its per-step timers alike.
        return "timed out"
    return ""


def _provably_unsent(exc: BaseException) -> bool:
    import aiohttp

    return isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def _failure(exc: Exception, url: str) -> TransportFailure:
    """What an exception out of aiohttp amounts to, without its text or frames."""
    import aiohttp

    if isinstance(exc, ReplyTooLarge):
        exc.host = host_of(url)
        # Raised from within the HTTP library's frames, whose locals hold the
        # request: none of them goes on.
        return exc.with_traceback(None)
    if isinstance(exc, (aiohttp.ClientError, TimeoutError)):
        return TransportFailure(
            type(exc).__name__,
            provably_unsent=_provably_unsent(exc),
            host=host_of(url),
            reason=failure_reason(exc) or _timeout_reason(exc),
        )
    # Whatever else aiohttp raises (a closed event loop, a bug) may come after the
    # request left, and its frames may hold the password.
    return TransportFailure(
        type(exc).__name__,
        provably_unsent=False,
        host=host_of(url),
        reason=failure_reason(exc),
    )


class AiohttpTransport:
    """Sends requests with one ``aiohttp.ClientSession`` (created on first use).

    Use it through a client: ``aiosms.ThousandSms(..., transport="aiohttp")``, or pass
    an instance to share your own session (never closed by aiosms)::

        transport = aiosms.AiohttpTransport(session=my_session)
        sms = aiosms.ThousandSms(email=..., password=..., transport=transport)

    Runs on asyncio only; with trio use the default httpx transport. Redirects are
    never followed.
    """

    #: aiohttp silently resends idempotent requests on a dead kept-alive connection.
    retries_idempotent_requests = True

    def __init__(
        self,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        try:
            import aiohttp  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the aiohttp transport needs aiohttp: pip install 'aiosms[aiohttp]'"
            ) from None
        self._session = session
        self._owns_session = session is None
        self._timeout = _client_timeout(timeout)
        self._limits = limits
        self._closed = False
        #: Connections the session's pool may open (None: a caller's own session).
        self.max_connections = limits.max_connections if session is None else None

    @staticmethod
    def _on_asyncio() -> bool:
        import asyncio

        # This module is asyncio's by nature: aiohttp runs nowhere else (not on trio).
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def check_runtime(self) -> None:
        """Raise ``RuntimeError`` unless running on asyncio (clients call it on entry)."""
        if not self._on_asyncio():
            raise RuntimeError(
                "the aiohttp transport runs on asyncio only; use the default transport"
            )

    def _open_session(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 15.0,
        )
        return aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, trust_env=False
        )

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        """Send one request; return its status and body, or raise ``TransportFailure``."""
        session = self._session_for(request)
        options: dict[str, Any] = {"allow_redirects": False}
        if timeout is not None:
            options["timeout"] = _client_timeout(timeout)
        failure: TransportFailure | None = None
        started = time.perf_counter()
        status, body, retry_after = 0, b"", None
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.content,
                headers=request.headers,
                **options,
            ) as response:
                body = await _read_capped(response)
                status = response.status
                retry_after = response.headers.get("retry-after")
        except Exception as exc:
            failure = _failure(exc, request.url)
        if failure is not None:
            # Raised here, outside the ``except`` block: no cause or context chained.
            raise logged_failure(request, failure)
        return logged_response(request, started, status, body, retry_after)

    def _session_for(self, request: WireRequest) -> aiohttp.ClientSession:
        """The session to send ``request`` with, opened on first use."""
        if self._session is None:
            if not self._on_asyncio():
                # Nothing can leave from here: certainly not sent, and no use retrying.
                raise TransportFailure(
                    "aiohttp transport outside asyncio", provably_unsent=True, retryable=False
                )
            self._session = self._open_session()
        if self._session.closed:
            # aiohttp would raise a bare RuntimeError; nothing can leave a closed session.
            raise logged_failure(request, closed_failure(request.url))
        return self._session

    async def aclose(self) -> None:
        """Close the session aiosms opened (never one you passed in). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_session and self._session is not None:
            with anyio.CancelScope(shield=True):
                await self._session.close()
