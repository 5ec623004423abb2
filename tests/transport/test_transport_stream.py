"""aiosms's own network stream under httpcore: one write per request, cheap idle checks."""

from __future__ import annotations

import gzip
from typing import Any

import anyio
import anyio.abc
import httpcore
import httpx
import pytest

from aiosms._transport import HttpxTransport, WireRequest, _Backend, _Stream, step_bounds

pytestmark = pytest.mark.anyio

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Recorder(httpcore.AsyncNetworkStream):
    """A network stream that records what is written and replies with one canned answer."""

    def __init__(self, reply: bytes = REPLY) -> None:
        self.writes: list[bytes] = []
        self.reads = 0
        self.reply = reply

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self.writes.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.reads += 1
        reply, self.reply = self.reply, b""
        return reply

    async def aclose(self) -> None:
        return None

    def get_extra_info(self, info: str) -> Any:
        return None


def gateway_request(method: str, content: bytes = b"") -> httpcore.Request:
    headers = [(b"Host", b"127.0.0.1")]
    if content:
        headers.append((b"Content-Length", str(len(content)).encode()))
    return httpcore.Request(
        method, "http://127.0.0.1/push_msg.php", headers=headers, content=content
    )


async def exchange(stream: httpcore.AsyncNetworkStream, method: str, content: bytes = b"") -> bytes:
    connection = httpcore.AsyncHTTP11Connection(
        origin=httpcore.Origin(b"http", b"127.0.0.1", 80), stream=stream
    )
    response = await connection.handle_async_request(gateway_request(method, content))
    body = await response.aread()
    await response.aclose()
    return body


async def test_a_requests_head_and_body_leave_in_one_write() -> None:
    inner = Recorder()
    body = await exchange(_Stream(inner), "POST", b"phone=79160000001&text=hi")
    assert body == b"ok"
    assert len(inner.writes) == 1
    head, _, sent_body = inner.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /push_msg.php HTTP/1.1\r\n")
    assert sent_body == b"phone=79160000001&text=hi"


async def test_a_request_without_a_body_leaves_in_one_write_before_the_reply_is_read() -> None:
    inner = Recorder()
    body = await exchange(_Stream(inner), "GET")
    assert body == b"ok"
    assert len(inner.writes) == 1
    assert inner.writes[0].startswith(b"GET /push_msg.php HTTP/1.1\r\n")
    assert inner.writes[0].endswith(b"\r\n\r\n")


async def test_a_write_followed_by_a_read_is_sent_before_reading() -> None:
    # A proxy's handshake writes and then waits for the answer.
    inner = Recorder(reply=b"\x05\x00")
    stream = _Stream(inner)
    await stream.write(b"\x05\x01\x00")
    assert inner.writes == []
    assert await stream.read(2) == b"\x05\x00"
    assert inner.writes == [b"\x05\x01\x00"]


async def test_each_request_on_a_kept_alive_connection_leaves_in_one_write() -> None:
    inner = Recorder(reply=REPLY)
    connection = httpcore.AsyncHTTP11Connection(
        origin=httpcore.Origin(b"http", b"127.0.0.1", 80), stream=_Stream(inner)
    )
    for text in (b"one", b"two", b"three"):
        inner.reply = REPLY
        response = await connection.handle_async_request(gateway_request("POST", text))
        assert await response.aread() == b"ok"
        await response.aclose()
    assert [write.rpartition(b"\r\n\r\n")[2] for write in inner.writes] == [
        b"one",
        b"two",
        b"three",
    ]


async def serve_once_then_close(
    listener: anyio.abc.Listener[anyio.abc.SocketStream],
    accepted: list[int],
    reply: bytes = REPLY,
) -> None:
    """Answer one request per connection, then close it: a gateway ending keep-alive."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        accepted.append(1)
        async with client:
            data = b""
            with anyio.fail_after(5):
                while b"\r\n\r\n" not in data:
                    data += await client.receive()
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += await client.receive()
            await client.send(reply)

    async with listener:
        await listener.serve(handle)


async def test_a_kept_alive_connection_the_gateway_closed_is_replaced_not_failed() -> None:
    accepted: list[int] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    transport = HttpxTransport()
    request = WireRequest("POST", f"http://127.0.0.1:{port}/push_msg.php", content=b"a=1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_once_then_close, listener, accepted)
        try:
            first = await transport.request(request)
            # Time for the gateway's close to reach the idle connection.
            await anyio.sleep(0.2)
            second = await transport.request(request)
        finally:
            await transport.aclose()
            tg.cancel_scope.cancel()
    assert (first.status_code, first.body) == (200, b"ok")
    assert (second.status_code, second.body) == (200, b"ok")
    assert len(accepted) == 2


async def test_a_compressed_reply_is_read_decompressed() -> None:
    payload = b'{"err_code": 0, "data": {"id": "1"}}'
    packed = gzip.compress(payload)
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(packed),
        packed,
    )
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    transport = HttpxTransport()
    request = WireRequest("POST", f"http://127.0.0.1:{port}/push_msg.php", content=b"a=1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_once_then_close, listener, [], reply)
        try:
            response = await transport.request(request)
        finally:
            await transport.aclose()
            tg.cancel_scope.cancel()
    assert (response.status_code, response.body) == (200, payload)


def test_aiosms_own_pools_use_its_stream_and_a_proxys_pool_too() -> None:
    direct = HttpxTransport()
    proxied = HttpxTransport(proxy=httpx.Proxy("http://127.0.0.1:3128"))
    pools = [direct._client._transport._pool]  # type: ignore[attr-defined]
    pools += [mount._pool for mount in proxied._client._mounts.values()]  # type: ignore[union-attr]
    assert len(pools) == 2
    assert all(isinstance(pool._network_backend, _Backend) for pool in pools)


def test_a_callers_own_client_keeps_httpcores_stream() -> None:
    client = httpx.AsyncClient()
    HttpxTransport(client=client)
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert not isinstance(pool._network_backend, _Backend)


def test_a_step_bound_the_deadline_always_beats_is_not_set() -> None:
    # The default: the whole request within 15 s, so a 15 s read bound never fires first.
    bounds = step_bounds(httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0))
    assert bounds == {"connect": 5.0, "read": None, "write": 10.0, "pool": 10.0}


def test_a_single_timeout_leaves_every_step_to_the_deadline() -> None:
    assert step_bounds(httpx.Timeout(2.0)) == dict.fromkeys(
        ("connect", "read", "write", "pool"), None
    )


def test_no_timeout_at_all_leaves_every_step_unbounded() -> None:
    assert step_bounds(httpx.Timeout(None)) == dict.fromkeys(
        ("connect", "read", "write", "pool"), None
    )


async def body_of(request: httpx.Request) -> bytes:
    return b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "wire",
    [
        WireRequest(
            "POST",
            "http://127.0.0.1:9/push_msg.php",
            content=b"phone=79160000001&text=hi",
            headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        ),
        WireRequest("POST", "http://127.0.0.1:9/push_msg.php", content=b"x"),
        WireRequest("POST", "http://127.0.0.1:9/get_profile.php"),
        WireRequest("GET", "http://127.0.0.1:9/", params={"method": "get_profile", "a": "б c"}),
    ],
    ids=repr,
)
async def test_aiosms_own_requests_are_those_httpx_would_build(wire: WireRequest) -> None:
    transport = HttpxTransport()
    client = transport._client
    try:
        expected = client.build_request(
            wire.method, wire.url, params=wire.params, content=wire.content, headers=wire.headers
        )
        # Twice: the second request reuses what the first one merged.
        for _ in range(2):
            built = transport._own_request(wire, httpx.URL(wire.url), {})
            assert (built.method, built.url) == (expected.method, expected.url)
            assert built.headers.raw == expected.headers.raw
            assert await body_of(built) == (wire.content or b"")
    finally:
        await transport.aclose()


async def test_bodies_of_different_lengths_to_one_url_each_carry_their_own_length() -> None:
    transport = HttpxTransport()
    try:
        lengths = []
        for content in (b"a=1", b"a=12345", b"a"):
            wire = WireRequest("POST", "http://127.0.0.1:9/push_msg.php", content=content)
            built = transport._own_request(wire, httpx.URL(wire.url), {})
            lengths.append(built.headers.get_list("content-length"))
    finally:
        await transport.aclose()
    assert lengths == [["3"], ["7"], ["1"]]
