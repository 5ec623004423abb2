"""What a transport failure says: the host and the reason, never the URL's query.

``ConnectError`` alone does not tell a wrong host from a firewall or a bad
certificate. Errors name the host (``127.0.0.1:8080``) and the reason in plain
words; they never show a query string or a body (with GET the password travels in
the query), and no frame of their tracebacks holds the password.
"""

from __future__ import annotations

import itertools
import socket
import ssl
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import anyio
import httpcore
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from support import msg

import aiosms
from aiosms._transport import failure_reason

pytestmark = pytest.mark.anyio

PASSWORD = "errors-test-pa55word"
FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


@pytest.fixture(
    params=[("httpx", "asyncio"), ("httpx", "trio"), ("aiohttp", "asyncio")],
    ids=["httpx-asyncio", "httpx-trio", "aiohttp-asyncio"],
)
def stack(request: pytest.FixtureRequest) -> tuple[str, str]:
    return tuple(request.param)


@pytest.fixture
def anyio_backend(stack: tuple[str, str]) -> str:
    """aiohttp runs on asyncio only: the stacks above pair each transport with its loops."""
    return stack[1]


@pytest.fixture
def transport(stack: tuple[str, str]) -> str:
    return stack[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def make_client(
    gateway: str, base_url: str, transport: str, method: str = "POST", **options: Any
) -> aiosms.MySms | aiosms.ThousandSms:
    common: dict[str, Any] = {
        "password": PASSWORD,
        "sender": "sms-tester",
        "base_url": base_url,
        "retry": FAST,
        "method": method,
        **options,
    }
    if transport == "aiohttp":
        common["transport"] = "aiohttp"
    if gateway == "mysms":
        return aiosms.MySms(username="errors-user", **common)
    return aiosms.ThousandSms(email="errors@example.com", **common)


def _exceptions(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(getattr(current, "exceptions", ()))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _frames(tb: TracebackType | None) -> Iterator[dict[str, Any]]:
    while tb is not None:
        yield tb.tb_frame.f_locals
        tb = tb.tb_next


def assert_no_password_in_traceback(error: BaseException) -> None:
    """What an error tracker records: every frame's locals, down every chain."""
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


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_refused_connection_names_the_host_and_the_reason(
    transport: str, gateway: str, method: str
) -> None:
    if transport == "aiohttp" and method == "GET":
        method = "POST"  # GET sends are refused on aiohttp (tested elsewhere)
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}/rest/"
    async with make_client(gateway, base_url, transport, method) as sms:
        with pytest.raises(aiosms.TransportError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as read_error:
            await sms.balance()
    for caught in (send_error.value, read_error.value):
        text = str(caught)
        assert f"127.0.0.1:{port}" in text
        assert "connection refused" in text
        assert "?" not in text
        assert "/rest" not in text
        assert caught.may_have_been_sent is False
        assert_no_password_in_traceback(caught)


async def serve_plain_http(stream: SocketStream) -> None:
    async with stream:
        try:
            await stream.receive()
            await stream.send(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_a_tls_failure_names_the_host_and_tls(transport: str, gateway: str) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_plain_http)
        # https:// to a server that speaks plain HTTP: the handshake fails.
        async with make_client(gateway, f"https://127.0.0.1:{port}/", transport) as sms:
            with anyio.fail_after(10), pytest.raises(aiosms.TransportError) as caught:
                await sms.send(msg())
            with anyio.fail_after(10), pytest.raises(aiosms.TransportError) as read_error:
                await sms.balance()
        tg.cancel_scope.cancel()
    # No TLS session, no request: certainly not sent.
    assert caught.value.may_have_been_sent is False
    for error in (caught.value, read_error.value):
        assert f"127.0.0.1:{port}" in str(error)
        assert "TLS" in str(error)
        assert_no_password_in_traceback(error)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_stalled_reply_says_the_deadline_passed_and_keeps_no_password(
    transport: str, gateway: str, method: str
) -> None:
    if transport == "aiohttp" and method == "GET":
        method = "POST"  # GET sends are refused on aiohttp (tested elsewhere)

    async def stall(stream: SocketStream) -> None:
        async with stream:
            try:
                await stream.receive()
                await anyio.sleep(30)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, stall)
        async with make_client(
            gateway,
            f"http://127.0.0.1:{port}/",
            transport,
            method,
            retry=aiosms.RetryPolicy(read_retries=0, send_retries=0),
        ) as sms:
            with anyio.fail_after(5), pytest.raises(aiosms.DeliveryUnknownError) as send_error:
                await sms.send(msg(), timeout=0.3)
            with anyio.fail_after(5), pytest.raises(aiosms.TransportError) as read_error:
                await sms.balance(timeout=0.3)
        tg.cancel_scope.cancel()
    for error in (send_error.value, read_error.value):
        assert f"127.0.0.1:{port}" in str(error)
        assert "time" in str(error).lower()
        assert_no_password_in_traceback(error)


# -- the reason, from the exception chains each HTTP stack raises ---------------------


def _chain(*exceptions: BaseException) -> BaseException:
    for outer, inner in itertools.pairwise(exceptions):
        outer.__cause__ = inner
    return exceptions[0]


class _Group(Exception):
    """Shaped as an exception group is (Python 3.10 has none built in)."""

    def __init__(self, *exceptions: BaseException) -> None:
        super().__init__("attempts")
        self.exceptions = exceptions


def test_the_reason_is_read_from_the_innermost_cause() -> None:
    dns = _chain(httpx.ConnectError("x"), httpcore.ConnectError("x"), socket.gaierror(-2, "x"))
    assert failure_reason(dns) == "DNS lookup failed"
    refused = _chain(
        httpx.ConnectError("x"),
        httpcore.ConnectError("x"),
        OSError("all attempts failed"),
        _Group(ConnectionRefusedError(111, "refused")),
    )
    assert failure_reason(refused) == "connection refused"
    tls = _chain(httpx.ConnectError("x"), httpcore.ConnectError("x"), ssl.SSLError(1, "x"))
    assert failure_reason(tls) == "TLS handshake failed"
    untrusted = _chain(
        httpx.ConnectError("x"), httpcore.ConnectError("x"), ssl.SSLCertVerificationError(1, "x")
    )
    assert failure_reason(untrusted) == "TLS certificate not trusted"
    assert failure_reason(httpx.ConnectTimeout("x")) == "connecting timed out"
    assert failure_reason(ValueError("no idea")) == ""


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_an_oversized_reply_keeps_no_password_in_its_traceback(
    transport: str, gateway: str
) -> None:
    # GET puts the password in the URL, which the HTTP library's frames hold.
    method = "POST" if transport == "aiohttp" else "GET"

    async def flood(stream: SocketStream) -> None:
        async with stream:
            try:
                await stream.receive()
                await stream.send(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                for _ in range(1000):
                    await stream.send(b"7" * 65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, flood)
        async with make_client(gateway, f"http://127.0.0.1:{port}/", transport, method) as sms:
            with anyio.fail_after(10), pytest.raises(aiosms.DeliveryUnknownError) as send_error:
                await sms.send(msg())
            with anyio.fail_after(10), pytest.raises(aiosms.ProtocolError) as read_error:
                await sms.balance()
        tg.cancel_scope.cancel()
    for error in (send_error.value, read_error.value):
        assert f"127.0.0.1:{port}" in str(error)
        assert_no_password_in_traceback(error)
