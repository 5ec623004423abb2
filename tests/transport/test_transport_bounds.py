"""Every request is bounded in time and every reply in size, on both transports.

A gateway (or whatever answers in its place) can trickle a reply byte by byte or
send hundreds of megabytes. A request attempt ends within its deadline, and a reply
is read up to ``MAX_REPLY_BYTES`` and no further. These faults need a server that
misbehaves on purpose: a few lines of raw TCP on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from support import msg

import aiosms
from aiosms._transport import deadline_of
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

PASSWORD = "bounds-test-password"
NO_RETRIES = aiosms.RetryPolicy(read_retries=0, send_retries=0)
Handler = Callable[[SocketStream], Awaitable[None]]


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


def client(base_url: str, transport: str, **options: object) -> aiosms.MySms:
    return aiosms.MySms(
        username="bounds-user",
        password=PASSWORD,
        sender="MyShop",
        base_url=base_url,
        transport="aiohttp" if transport == "aiohttp" else None,
        **options,  # type: ignore[arg-type]
    )


async def read_request(stream: SocketStream) -> BufferedByteReceiveStream:
    reader = BufferedByteReceiveStream(stream)
    head = await reader.receive_until(b"\r\n\r\n", 64 * 1024)
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.receive_exactly(length)
    return reader


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that runs ``handler`` per connection; yields a base URL."""

    async def guarded(stream: SocketStream) -> None:
        async with stream:
            try:
                await handler(stream)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            except (anyio.EndOfStream, anyio.IncompleteRead):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, guarded)
        try:
            yield f"http://127.0.0.1:{port}/rest/sms/"
        finally:
            tg.cancel_scope.cancel()


def trickler(connections: list[int]) -> Handler:
    async def trickle(stream: SocketStream) -> None:
        await read_request(stream)
        connections.append(1)
        await stream.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n"
        )
        # One byte every 0.25 s: each read returns in time, the reply never ends.
        for _ in range(200):
            await stream.send(b" ")
            await anyio.sleep(0.25)

    return trickle


async def test_a_reply_trickled_byte_by_byte_ends_a_send_at_its_deadline(transport: str) -> None:
    connections: list[int] = []
    async with (
        raw_server(trickler(connections)) as base_url,
        client(base_url, transport, retry=NO_RETRIES) as sms,
    ):
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg(), timeout=1.0)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert caught.value.may_have_been_sent is True
    assert "127.0.0.1" in str(caught.value)
    assert connections == [1]


async def test_a_reply_trickled_byte_by_byte_ends_a_read_at_its_deadline(transport: str) -> None:
    connections: list[int] = []
    async with (
        raw_server(trickler(connections)) as base_url,
        client(base_url, transport, retry=NO_RETRIES) as sms,
    ):
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises(aiosms.TransportError) as caught:
            await sms.balance(timeout=1.0)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert caught.value.may_have_been_sent is False


def flooder(sent: list[int], *, declared: bool) -> Handler:
    total = 300 * 1024 * 1024

    async def flood(stream: SocketStream) -> None:
        await read_request(stream)
        framing = f"content-length: {total}" if declared else "connection: close"
        await stream.send(
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n".encode()
        )
        chunk = b"7" * 65536
        count = 0
        try:
            while count < total:
                await stream.send(chunk)
                count += len(chunk)
        finally:
            sent.append(count)

    return flood


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
async def test_a_300_mb_reply_to_a_send_is_abandoned_at_the_cap_as_unknown(
    transport: str, declared: bool
) -> None:
    sent: list[int] = []
    async with raw_server(flooder(sent, declared=declared)) as base_url:
        async with client(base_url, transport, retry=NO_RETRIES) as sms:
            with anyio.fail_after(10), pytest.raises(aiosms.DeliveryUnknownError) as caught:
                await sms.send(msg())
        with anyio.fail_after(5):
            while not sent:
                await anyio.sleep(0.01)
    assert caught.value.kind == "ReplyTooLarge"
    assert str(aiosms.MAX_REPLY_BYTES) in str(caught.value)
    # The cap plus what socket buffers hold, never the 300 MB.
    assert sent[0] < 32 * 1024 * 1024


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
async def test_a_300_mb_reply_to_a_read_is_a_protocol_error_not_retried(
    transport: str, declared: bool
) -> None:
    sent: list[int] = []
    async with raw_server(flooder(sent, declared=declared)) as base_url:
        async with client(base_url, transport) as sms:
            with anyio.fail_after(10), pytest.raises(aiosms.ProtocolError) as caught:
                await sms.balance()
        with anyio.fail_after(5):
            while not sent:
                await anyio.sleep(0.01)
    assert "larger than" in str(caught.value)
    assert len(sent) == 1
    assert sent[0] < 32 * 1024 * 1024


async def test_a_burst_waiting_for_the_pool_ends_within_the_deadline(transport: str) -> None:
    # 200 sends, 10 connections, a gateway that takes 2 s: without an overall bound
    # the second wave waits 2 s for a connection and 2 s for its reply (4 s in all).
    fake = FakeMySms(latency=2.0, password=PASSWORD)
    durations: list[float] = []
    outcomes: list[aiosms.Receipt | aiosms.SmsError] = []
    async with (
        fake.serve() as base_url,
        fake.client(
            base_url=base_url,
            sender="MyShop",
            timeout=3.0,
            retry=NO_RETRIES,
            transport="aiohttp" if transport == "aiohttp" else None,
        ) as sms,
    ):

        async def one(number: int) -> None:
            started = time.monotonic()
            try:
                outcomes.append(await sms.send(msg(f"burst {number}")))
            except aiosms.SmsError as error:
                outcomes.append(error)
            durations.append(time.monotonic() - started)

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                for number in range(200):
                    tg.start_soon(one, number)
    assert len(outcomes) == 200
    assert max(durations) < 3.0 + 0.8
    accepted = [o for o in outcomes if isinstance(o, aiosms.Receipt)]
    unsent = [o for o in outcomes if isinstance(o, aiosms.SmsError) and not o.may_have_been_sent]
    unknown = [o for o in outcomes if isinstance(o, aiosms.DeliveryUnknownError)]
    assert len(accepted) + len(unsent) + len(unknown) == 200
    assert 1 <= len(accepted) <= 10
    assert all(isinstance(e, aiosms.TransportError) for e in unsent)
    # Every accepted message is in the ledger; a not-sent one never is.
    ledger = {entry.id for entry in fake.ledger}
    assert {r.message_id for r in accepted} <= ledger
    assert len(ledger) <= len(accepted) + len(unknown)


# -- how a timeout maps to the overall deadline -------------------------------------


def test_a_float_timeout_is_also_the_overall_deadline() -> None:
    assert deadline_of(httpx.Timeout(2.5)) == 2.5


def test_an_httpx_timeout_gives_the_largest_of_its_parts_as_the_deadline() -> None:
    assert deadline_of(aiosms.DEFAULT_TIMEOUT) == 15.0
    assert deadline_of(httpx.Timeout(1.0, pool=4.0)) == 4.0
    assert deadline_of(httpx.Timeout(None, read=3.0)) == 3.0
    assert deadline_of(httpx.Timeout(None)) is None
