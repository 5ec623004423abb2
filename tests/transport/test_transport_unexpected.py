"""Whatever a transport raises, the caller gets a typed outcome.

A bare ``RuntimeError`` from deep inside an HTTP stack (a closed event loop, a bug)
may come after the request was written. On a send it is an unknown outcome, on a
read a ``TransportError``; never the original exception, whose frames hold the
request and so the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx
import pytest
from support import msg

import aiosms
from aiosms._transport import WireRequest, WireResponse

pytestmark = pytest.mark.anyio

PASSWORD = "unexpected-pa55word"


class Exploding(httpx.AsyncBaseTransport):
    """An httpx transport that fails the way a closed event loop does."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = await request.aread()  # the password is in this frame's locals
        assert body or request.url.query
        raise RuntimeError("Event loop is closed")


class ExplodingTransport:
    """An aiosms transport (the interface a wrapper of transports implements) that fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        self.calls += 1
        raise RuntimeError("Event loop is closed")

    async def aclose(self) -> None:
        pass


def _exceptions(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _frames(tb: TracebackType | None) -> Iterator[dict[str, Any]]:
    while tb is not None:
        yield tb.tb_frame.f_locals
        tb = tb.tb_next


def assert_no_password_in_traceback(error: BaseException) -> None:
    for exc in _exceptions(error):
        assert PASSWORD not in str(exc)
        for frame_locals in _frames(exc.__traceback__):
            for name, value in frame_locals.items():
                if isinstance(value, bytes):
                    found = PASSWORD.encode() in value
                elif isinstance(value, str):
                    found = PASSWORD in value
                else:
                    found = PASSWORD in repr(value)
                assert not found, f"{name} in a traceback frame of {type(exc).__name__}"


def make(gateway: str, method: str, **wiring: Any) -> aiosms.MySms | aiosms.ThousandSms:
    options: dict[str, Any] = {
        "password": PASSWORD,
        "sender": "sms-tester",
        "method": method,
        "base_url": "http://gateway.test/",
        "retry": aiosms.RetryPolicy(initial_delay=0.0),
        **wiring,
    }
    if gateway == "mysms":
        return aiosms.MySms(username="u", **options)
    return aiosms.ThousandSms(email="me@example.com", **options)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_an_unexpected_error_inside_httpx_is_unknown_on_a_send_and_typed_on_a_read(
    gateway: str, method: str
) -> None:
    exploding = Exploding()
    async with make(gateway, method, http_transport=exploding) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as read_error:
            await sms.balance()
    assert send_error.value.kind == "RuntimeError"
    assert "gateway.test" in str(send_error.value)
    assert read_error.value.may_have_been_sent is False
    # The send was not retried: it may have left.
    assert exploding.calls == 1 + 1 + sms.retry.read_retries
    assert_no_password_in_traceback(send_error.value)
    assert_no_password_in_traceback(read_error.value)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_an_unexpected_error_from_a_transport_object_is_classified(gateway: str) -> None:
    transport = ExplodingTransport()
    async with make(gateway, "POST", transport=transport) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError):
            await sms.balance()
        receipts = await sms.send_many([msg(), msg()])
    assert send_error.value.may_have_been_sent is True
    assert [r.state for r in receipts] == [aiosms.DeliveryState.UNKNOWN] * 2
    assert send_error.value.__cause__ is None
    assert send_error.value.__context__ is None
