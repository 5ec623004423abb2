"""A client's shared options, checked before anything is built.

Two jobs: the endpoint (where and how a client talks to its gateway: URL, format,
verb, password, default sender, part limit), which every gateway codec is built
from; and the transport that carries the requests, checked against the options
that constrain it (a GET on a transport that resends by itself, a proxy on a pool
the caller brought). Each bad option is a ``ValidationError`` naming it, raised
before any connection exists. Nothing here knows a gateway's wire format.
"""

from __future__ import annotations

from typing import Literal

import attrs
import httpx

from aiosms._errors import ValidationError
from aiosms._gateway import Format, HttpMethod
from aiosms._retry import RetryPolicy
from aiosms._secret import Secret
from aiosms._sharded import ProxyArg, ShardedTransport, VerifyArg, check_proxy, tls_context
from aiosms._transport import HttpxTransport, Transport
from aiosms._validation import (
    non_negative_int,
    non_negative_number,
    optional,
    positive_int,
    positive_number,
)

__all__ = ["Endpoint", "as_timeout", "check_retry", "endpoint", "make_transport"]


@attrs.frozen(slots=True)
class Endpoint:
    """Where and how a client talks to its gateway, checked: what every codec shares.

    ``base_url`` ends with "/"; ``sender`` is the client's default; ``max_parts``
    (None: no limit) refuses longer texts before any request.
    """

    base_url: str
    format: Format
    method: HttpMethod
    password: Secret = attrs.field(repr=False)
    sender: str | None
    max_parts: int | None


def endpoint(
    password: str,
    sender: str | None,
    base_url: str,
    format: str,
    method: str,
    max_parts: int | None,
) -> Endpoint:
    """The endpoint the options describe (the gateway's own sender rules are its
    client's to check)."""
    max_parts = optional(positive_int, max_parts, "max_parts")
    if not isinstance(password, str) or not password:
        raise ValidationError("password", "must be a non-empty string")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValidationError("base_url", "must be an http:// or https:// URL")
    return Endpoint(
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        format=_choice(format, "format", ("json", "xml")),  # type: ignore[arg-type]
        method=_choice(method, "method", ("POST", "GET")),  # type: ignore[arg-type]
        password=Secret(password),
        sender=sender,
        max_parts=max_parts,
    )


def as_timeout(value: float | httpx.Timeout | None, field: str = "timeout") -> httpx.Timeout | None:
    """A checked ``httpx.Timeout`` (None stays None: the transport's own applies)."""
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


def check_retry(retry: object) -> RetryPolicy:
    """The retry policy given, or the default one."""
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


def make_transport(
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
