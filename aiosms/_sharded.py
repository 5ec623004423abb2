"""The default transport: several small httpx pools, requests spread over them.

httpx's connection pool scans every connection it holds on every request, so one
pool of many connections spends the client's CPU on bookkeeping: measured here,
with 50 ms of gateway latency and 50 requests in flight, one pool of 50 served
~120 requests/s against an ideal 1,000. The same connections split into small
pools ("shards") keep each scan short. This module builds those shards, each an
``HttpxTransport`` over its own ``httpx.AsyncClient``, and sends each request
through the shard with the most free connections. It knows nothing of gateways
or retries; every safety rule of a single request (no redirects, "provably
unsent" from the original exception, fixed failure texts) stays in
``HttpxTransport``.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import anyio
import httpx

from aiosms._errors import ValidationError
from aiosms._transport import (
    HttpxTransport,
    WireRequest,
    WireResponse,
    default_ssl_context,
)

__all__ = [
    "SHARD_CONNECTIONS",
    "ProxyArg",
    "ShardedTransport",
    "VerifyArg",
    "check_proxy",
    "tls_context",
]

#: Connections per shard. Measured with 50 ms gateway latency, ``send_many`` on a
#: loaded 2-core VM, as a fraction of the ideal N / 0.05 s with N in flight
#: (shards of 2 / 5 / 10 / one pool): N=50 0.75 / 0.80 / 0.84 / 0.11, N=100
#: 0.58 / 0.52 / 0.51 / 0.03, N=200 0.24 / 0.22 / 0.15 / 0.02 on asyncio; trio alike.
#: Any small size removes the collapse (past it, httpx's own cost per request is
#: the limit); 5 keeps the shards few. Scenario ``inflight`` in benchmarks/.
SHARD_CONNECTIONS = 5

VerifyArg = bool | str | os.PathLike[str] | ssl.SSLContext
ProxyArg = str | httpx.URL | httpx.Proxy | None


def tls_context(verify: VerifyArg, *, trust_env: bool) -> ssl.SSLContext:
    """The TLS settings for ``verify``: one context shared by every shard.

    ``True`` is httpx's default bundle (certifi), loaded once per process; with
    ``trust_env`` it honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` instead. A path
    is a CA bundle that replaces the default. ``False`` is refused: turning
    verification off lets anyone on the path read the password; a caller who must
    passes an ``ssl.SSLContext`` that says so.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return default_ssl_context() if not trust_env else httpx.create_ssl_context(trust_env=True)
    if verify is False or isinstance(verify, bool):
        raise ValidationError(
            "verify",
            "False is refused (it exposes the password to anyone on the path); "
            "pass a CA bundle path or an ssl.SSLContext",
        )
    if isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        try:
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError):
            raise ValidationError("verify", "must name a readable PEM CA bundle") from None
    raise ValidationError("verify", "must be True, a CA bundle path or an ssl.SSLContext")


def check_proxy(proxy: ProxyArg) -> httpx.Proxy | None:
    """``proxy`` as an ``httpx.Proxy``, checked before any network traffic."""
    if proxy is None or isinstance(proxy, httpx.Proxy):
        return proxy
    if not isinstance(proxy, (str, httpx.URL)):
        raise ValidationError("proxy", "must be a proxy URL or an httpx.Proxy")
    try:
        return httpx.Proxy(proxy)
    except (ValueError, httpx.InvalidURL):
        raise ValidationError(
            "proxy", "must be an http://, https:// or socks5:// URL with a host"
        ) from None


def _split(total: int | None, parts: int, index: int) -> int | None:
    # Shares differ by at most one: the first ``total % parts`` shards get one more.
    if total is None:
        return None
    return total // parts + (index < total % parts)


class _Shard:
    __slots__ = ("capacity", "in_flight", "transport")

    def __init__(self, transport: HttpxTransport, capacity: int) -> None:
        # The shard's HttpxTransport owns its client: it traces pool waits (a pool
        # timeout proves a request unsent) and closes the client on ``aclose``.
        self.transport = transport
        self.capacity = capacity
        self.in_flight = 0


class ShardedTransport:
    """aiosms's own httpx transport: ``connections`` split over small pools.

    Shards are built as load needs them (a web app sending one OTP at a time
    builds one), up to ``ceil(connections / shard_connections)``. Each request goes
    to the shard with the most free connections, so no pool holds more than its
    share and a request waits for a connection (up to the pool timeout, which
    proves it unsent) only when every shard is busy.
    """

    def __init__(
        self,
        *,
        connections: int,
        timeout: httpx.Timeout,
        limits: httpx.Limits,
        proxy: httpx.Proxy | None = None,
        verify: ssl.SSLContext | None = None,
        trust_env: bool = False,
        shard_connections: int = SHARD_CONNECTIONS,
    ) -> None:
        self._count = max(1, -(-connections // shard_connections))
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "proxy": proxy,
            "verify": verify if verify is not None else default_ssl_context(),
            "trust_env": trust_env,
        }
        self._limits = limits
        self._connections = connections
        #: Connections this transport may open in all: the most requests in flight.
        self.max_connections = connections
        self._shards: list[_Shard] = []
        self._closed = False
        self._add_shard()

    @property
    def shards(self) -> tuple[httpx.AsyncClient, ...]:
        """The shards' httpx clients built so far (for tests and diagnostics)."""
        return tuple(shard.transport._client for shard in self._shards)

    @property
    def shard_limit(self) -> int:
        """How many shards this transport may build."""
        return self._count

    def _add_shard(self) -> _Shard:
        index = len(self._shards)
        n = self._count
        limits = httpx.Limits(
            max_connections=_split(self._limits.max_connections, n, index),
            max_keepalive_connections=_split(self._limits.max_keepalive_connections, n, index),
            keepalive_expiry=self._limits.keepalive_expiry,
        )
        capacity = _split(self._connections, n, index) or 1
        shard = _Shard(HttpxTransport(limits=limits, **self._options), capacity)
        self._shards.append(shard)
        return shard

    def _pick(self) -> _Shard:
        best = self._shards[0]
        free = best.capacity - best.in_flight
        for shard in self._shards:
            room = shard.capacity - shard.in_flight
            if room > free:
                best, free = shard, room
        if free <= 0 and len(self._shards) < self._count and not self._closed:
            return self._add_shard()
        return best

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        shard = self._pick()
        shard.in_flight += 1
        try:
            return await shard.transport.request(request, timeout=timeout)
        finally:
            shard.in_flight -= 1

    def check_runtime(self) -> None:
        """Whatever the single-pool transport checks on entry, checked once."""
        check = getattr(self._shards[0].transport, "check_runtime", None)
        if check is not None:
            check()

    async def aclose(self) -> None:
        """Close every shard, even under cancellation. Safe to call twice."""
        self._closed = True
        failure: BaseException | None = None
        with anyio.CancelScope(shield=True):
            for shard in self._shards:
                try:
                    await shard.transport.aclose()
                except Exception as exc:  # every shard closes even if one fails
                    failure = failure or exc
        if failure is not None:
            raise failure
