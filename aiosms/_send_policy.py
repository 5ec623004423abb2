"""The send-safety policy: when a request is tried again, and what a failure means.

Two doors, as functions: ``read`` retries any transient fault of a status, balance
or profile call (network failures, HTTP 429 and 5xx, the gateway's own transient
refusals), waiting as the retry policy says and honouring ``Retry-After``; ``send``
retries only what provably never reached the gateway (and HTTP 429, a refusal) and
turns every other failure into ``DeliveryUnknownError``. Before each attempt the
caller's lifecycle is asked whether it may still go on (a closed client never asks
its transport again), and each attempt has its own deadline. Nothing here knows a
gateway's wire format or builds a request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import httpx

from aiosms._errors import (
    ClosedError,
    DeliveryUnknownError,
    ProtocolError,
    ProviderError,
    SmsError,
    TransportError,
)
from aiosms._models import Message
from aiosms._outcomes import REFUSED_STATUSES
from aiosms._retry import RetryPolicy
from aiosms._transport import (
    ReplyTooLarge,
    Transport,
    TransportFailure,
    WireRequest,
    WireResponse,
    host_of,
)

__all__ = ["Guard", "Route", "read", "send"]

T = TypeVar("T")

logger = logging.getLogger("aiosms")


class Guard(Protocol):
    """What the policy asks of the client's lifecycle between attempts."""

    @property
    def name(self) -> str:
        """The client's class name, for error messages."""

    @property
    def closed(self) -> bool:
        """True once the client is closed."""

    def check_open(self) -> None:
        """Raise ``ClosedError`` (nothing was sent) unless requests may go out."""

    async def backoff(self, seconds: float) -> None:
        """Wait before a retry, or less if the client is closed meanwhile."""


class Route(Protocol):
    """Where a request goes and under which rules: a client, to the policy."""

    @property
    def provider(self) -> str:
        """The gateway's name, for error messages."""

    @property
    def retry(self) -> RetryPolicy:
        """How many attempts, and how long between them."""

    @property
    def _transport(self) -> Transport: ...

    @property
    def _guard(self) -> Guard: ...


async def read(
    route: Route,
    request: WireRequest,
    parse: Callable[[bytes], T],
    *,
    what: str,
    timeout: httpx.Timeout | None = None,
) -> T:
    """Make a read and parse its reply, retrying transient faults.

    ``parse`` may raise a ``ProviderError``: a transient one (a gateway's own
    failure) is retried like a network fault.
    """
    guard, retry, provider = route._guard, route.retry, route.provider
    attempt = 0
    while True:
        # Before every attempt: aclose() may have come during the backoff.
        guard.check_open()
        retry_after: float | None = None
        failure: TransportFailure | None = None
        try:
            response = await route._transport.request(request, timeout=timeout)
        except Exception as caught:
            failure = _failure(caught, request)
        if failure is not None:
            error, transient = _read_failure(provider, what, failure)
        elif 200 <= response.status_code < 300:
            try:
                return parse(response.body)
            except ProviderError as refused:
                error, transient = refused, refused.transient
        else:
            code = response.status_code
            error = TransportError(
                f"{provider} {what}: HTTP {code} from {host_of(request.url)}",
                kind=f"HTTP {code}",
                status_code=code,
                may_have_been_sent=False,
            )
            transient = code == 429 or code >= 500
            retry_after = response.retry_after
        if not transient or attempt >= retry.read_retries:
            raise error
        await guard.backoff(retry.delay(attempt, retry_after))
        attempt += 1


async def send(
    route: Route,
    request: WireRequest,
    *,
    messages: Sequence[Message],
    what: str,
    timeout: httpx.Timeout | None = None,
) -> WireResponse:
    """Make a request that sends SMS; retry only what provably never left.

    HTTP 401, 403, 404 and 405 are refusals before any gateway logic (not sent);
    429 is a refusal retried within the send budget; any other failure and any
    other reply that is not 2xx is an unknown outcome.
    """
    guard, retry, provider = route._guard, route.retry, route.provider
    attempt = 0
    while True:
        # Before every attempt: aclose() may have come during the backoff, and a
        # closed transport must never be asked (nothing was sent: ClosedError).
        guard.check_open()
        failure: TransportFailure | None = None
        try:
            response = await route._transport.request(request, timeout=timeout)
        except Exception as caught:
            # Whatever a transport raises besides its own failures may come after
            # the request left: _failure says so. Raised from outside this block,
            # so no error chains the original (its text may hold a GET URL).
            failure = _failure(caught, request)
        retry_after: float | None = None
        if failure is not None:
            _check_unsent(provider, what, failure, messages, guard)
            error: SmsError = TransportError(
                f"{provider} {what}: {failure.describe()}; nothing was sent",
                kind=failure.kind,
                may_have_been_sent=False,
            )
            retryable = failure.retryable
        elif 200 <= response.status_code < 300:
            return response
        else:
            error = _refusal(provider, what, request, response, messages)
            retryable, retry_after = response.status_code == 429, response.retry_after
        if not retryable or attempt >= retry.send_retries:
            raise error
        await guard.backoff(retry.delay(attempt, retry_after))
        attempt += 1


def _refusal(
    provider: str,
    what: str,
    request: WireRequest,
    response: WireResponse,
    messages: Sequence[Message],
) -> TransportError:
    """The error of a send the server refused (nothing sent); raises for any other
    reply that is not 2xx, as its outcome is unknown."""
    code = response.status_code
    if code not in REFUSED_STATUSES and code != 429:
        raise DeliveryUnknownError(
            f"{provider} {what}: HTTP {code} from {host_of(request.url)}; "
            "the gateway may have accepted the message(s)",
            messages=messages,
            kind=f"HTTP {code}",
        )
    return TransportError(
        f"{provider} {what}: HTTP {code} from {host_of(request.url)}; "
        "the server refused the request, nothing was sent",
        kind=f"HTTP {code}",
        status_code=code,
        may_have_been_sent=False,
    )


def _check_unsent(
    provider: str,
    what: str,
    failure: TransportFailure,
    messages: Sequence[Message],
    guard: Guard,
) -> None:
    """Raise unless the failed request provably never left (and the client is open)."""
    if not failure.provably_unsent:
        raise DeliveryUnknownError(
            f"{provider} {what}: {failure.describe()} after the request may "
            "have left; the gateway may have accepted the message(s)",
            messages=messages,
            kind=failure.kind,
        )
    if guard.closed:
        raise ClosedError(f"{guard.name} was closed while sending; nothing was sent")


def _read_failure(provider: str, what: str, failure: TransportFailure) -> tuple[SmsError, bool]:
    """A read's typed error for a network failure, and whether it is transient."""
    if isinstance(failure, ReplyTooLarge):
        return ProtocolError(f"{provider} {what}: {failure.describe()}"), failure.retryable
    error = TransportError(
        f"{provider} {what}: {failure.describe()}",
        kind=failure.kind,
        may_have_been_sent=False,
    )
    return error, failure.retryable


def _failure(caught: Exception, request: WireRequest) -> TransportFailure:
    """The transport failure behind an exception a request raised.

    An exception a transport should not have let out may come after the request
    left, and only its name is kept: its frames and text may hold the request.
    """
    if isinstance(caught, TransportFailure):
        return caught
    logger.debug("the transport raised %s unexpectedly", type(caught).__name__)
    return TransportFailure(type(caught).__name__, provably_unsent=False, host=host_of(request.url))
