"""The send policy on its own: a scripted transport, a real lifecycle, no gateway.

Per DESIGN.md "Retries never duplicate an SMS": a read retries transient faults; a
send is retried only when its request provably never left (and after HTTP 429, a
refusal, honouring Retry-After); anything else after the request may have left is
an unknown outcome. A closed client never asks its transport again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

import aiosms
from aiosms import Message, RetryPolicy
from aiosms._lifecycle import Lifecycle
from aiosms._send_policy import read, send
from aiosms._transport import TransportFailure, WireRequest, WireResponse, provably_unsent

pytestmark = pytest.mark.anyio

REQUEST = WireRequest("POST", "https://gateway.test/send/json", content=b"{}")
MESSAGES = (Message(to="79112223333", text="Hi"),)
OK = WireResponse(200, b"ok")

Step = WireResponse | TransportFailure


def unsent() -> TransportFailure:
    return TransportFailure("ConnectError", provably_unsent=True, host="gateway.test")


def maybe_sent() -> TransportFailure:
    return TransportFailure("ReadTimeout", provably_unsent=False, host="gateway.test")


@dataclass
class ScriptedTransport:
    """A transport that answers each attempt with the next step of its script."""

    steps: Iterator[Step]
    timeouts: list[httpx.Timeout | None] = field(default_factory=list)

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        self.timeouts.append(timeout)
        step = next(self.steps)
        if isinstance(step, TransportFailure):
            raise step
        return step

    async def aclose(self) -> None:
        pass


@dataclass
class Route:
    """What the policy asks of a client: its transport, retry policy and lifecycle."""

    _transport: ScriptedTransport
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(initial_delay=0.001, max_delay=0.001, jitter=0)
    )
    provider: str = "test"
    _guard: Lifecycle = field(default_factory=lambda: Lifecycle("TestClient"))

    @property
    def attempts(self) -> int:
        return len(self._transport.timeouts)


def route(*steps: Step, retry: RetryPolicy | None = None) -> Route:
    made = Route(ScriptedTransport(iter(steps)))
    if retry is not None:
        made.retry = retry
    return made


async def test_a_send_that_provably_never_left_is_tried_again() -> None:
    r = route(unsent(), OK)
    assert await send(r, REQUEST, messages=MESSAGES, what="send") == OK
    assert r.attempts == 2


async def test_a_send_that_may_have_left_is_never_tried_again() -> None:
    r = route(maybe_sent(), OK)
    with pytest.raises(aiosms.DeliveryUnknownError) as unknown:
        await send(r, REQUEST, messages=MESSAGES, what="send")
    assert unknown.value.may_have_been_sent is True
    assert list(unknown.value.messages) == list(MESSAGES)
    assert r.attempts == 1


async def test_a_server_error_to_a_send_is_unknown_but_to_a_read_is_retried() -> None:
    sending = route(WireResponse(500, b""), OK)
    with pytest.raises(aiosms.DeliveryUnknownError):
        await send(sending, REQUEST, messages=MESSAGES, what="send")
    assert sending.attempts == 1
    reading = route(WireResponse(500, b""), WireResponse(200, b"42"))
    assert await read(reading, REQUEST, int, what="status") == 42
    assert reading.attempts == 2


async def test_a_send_out_of_attempts_after_unsent_failures_says_nothing_was_sent() -> None:
    quick = RetryPolicy(send_retries=2, initial_delay=0.001, max_delay=0.001, jitter=0)
    r = route(unsent(), unsent(), unsent(), OK, retry=quick)
    with pytest.raises(aiosms.TransportError) as failed:
        await send(r, REQUEST, messages=MESSAGES, what="send")
    assert failed.value.may_have_been_sent is False
    assert r.attempts == 3


async def test_a_refused_send_is_not_sent_and_not_tried_again() -> None:
    r = route(WireResponse(404, b""), OK)
    with pytest.raises(aiosms.TransportError) as refused:
        await send(r, REQUEST, messages=MESSAGES, what="send")
    assert refused.value.status_code == 404
    assert refused.value.may_have_been_sent is False
    assert r.attempts == 1


async def test_a_send_refused_with_429_waits_its_retry_after_then_goes_again() -> None:
    r = route(WireResponse(429, b"", retry_after=0.2), OK)
    started = anyio.current_time()
    assert await send(r, REQUEST, messages=MESSAGES, what="send") == OK
    assert anyio.current_time() - started >= 0.19
    assert r.attempts == 2


async def test_closing_during_a_backoff_stops_the_send_before_another_attempt() -> None:
    r = route(WireResponse(429, b"", retry_after=30), OK)
    r._guard.enter(lambda: None)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def close_soon() -> None:
                await anyio.sleep(0.05)
                r._guard.close()

            tg.start_soon(close_soon)
            with pytest.raises(aiosms.ClosedError):
                await send(r, REQUEST, messages=MESSAGES, what="send")
    assert r.attempts == 1


async def test_every_attempt_gets_the_callers_deadline() -> None:
    deadline = httpx.Timeout(0.5)
    r = route(unsent(), unsent(), OK)
    await send(r, REQUEST, messages=MESSAGES, what="send", timeout=deadline)
    assert r._transport.timeouts == [deadline, deadline, deadline]


async def test_an_unexpected_exception_from_a_transport_is_an_unknown_outcome_by_name_only() -> (
    None
):
    class Broken(ScriptedTransport):
        async def request(
            self, request: WireRequest, *, timeout: httpx.Timeout | None = None
        ) -> WireResponse:
            self.timeouts.append(timeout)
            raise RuntimeError("https://gateway.test/?p=secret")

    r = Route(Broken(iter(())))
    with pytest.raises(aiosms.DeliveryUnknownError) as unknown:
        await send(r, REQUEST, messages=MESSAGES, what="send")
    assert "secret" not in str(unknown.value)
    assert unknown.value.__context__ is None
    assert unknown.value.__cause__ is None
    assert r.attempts == 1


def _disconnect() -> None:
    raise httpx.RemoteProtocolError("Server disconnected")


def _map_without_from() -> None:
    try:
        _disconnect()
    except httpx.RemoteProtocolError:
        raise httpx.ConnectTimeout("mapped without from") from None


def test_a_connect_error_raised_while_handling_another_failure_is_not_proof() -> None:
    try:
        _map_without_from()
    except httpx.ConnectTimeout as exc:
        mapped = exc
    # "from None" hides the context from tracebacks but does not erase it.
    assert not provably_unsent(mapped)
