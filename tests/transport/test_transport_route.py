"""aiosms's own client hands its requests straight to its httpx transport: the same
request on the wire, no redirect followed, a URL's user info still sent as basic auth."""

from __future__ import annotations

import base64
import logging

import anyio
import anyio.abc
import pytest

from aiosms._transport import HttpxTransport, ReplyTooLarge, WireRequest

pytestmark = pytest.mark.anyio

REDIRECT = (
    b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\n"
    b"Content-Length: 5\r\n\r\nmoved"
)
OK = b"HTTP/1.1 200 OK\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\nok"


class Recording:
    """A loopback server answering every request with one canned reply, keeping heads."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []

    async def serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        async with listener:
            await listener.serve(self.handle)

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            data = b""
            with anyio.fail_after(5):
                while True:
                    while b"\r\n\r\n" not in data:
                        chunk = await client.receive()
                        if not chunk:
                            return
                        data += chunk
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(data) < length:
                        data += await client.receive()
                    self.heads.append(head)
                    self.bodies.append(data[:length])
                    data = data[length:]
                    await client.send(self.reply)


async def exchange(server: Recording, url_of: str, count: int = 1) -> list[tuple[int, bytes]]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    transport = HttpxTransport()
    url = url_of.format(port=port)
    replies = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, listener)
        try:
            with anyio.fail_after(10):
                for index in range(count):
                    wire = WireRequest("POST", url, content=b"text=%d" % index)
                    response = await transport.request(wire)
                    replies.append((response.status_code, response.body))
        finally:
            await transport.aclose()
            tg.cancel_scope.cancel()
    return replies


async def test_a_redirect_from_the_gateway_is_returned_as_it_is_never_followed() -> None:
    server = Recording(REDIRECT)
    replies = await exchange(server, "http://127.0.0.1:{port}/push_msg.php")
    assert replies == [(302, b"moved")]
    assert len(server.heads) == 1
    assert server.heads[0].startswith(b"POST /push_msg.php HTTP/1.1\r\n")


async def test_requests_go_out_whole_and_their_replies_come_back_over_one_connection() -> None:
    server = Recording(OK)
    replies = await exchange(server, "http://127.0.0.1:{port}/push_msg.php", count=3)
    assert replies == [(200, b"ok")] * 3
    assert server.bodies == [b"text=0", b"text=1", b"text=2"]
    for head in server.heads:
        lines = head.lower().split(b"\r\n")
        assert b"content-length: 6" in lines
        assert any(line.startswith(b"host: 127.0.0.1:") for line in lines)


async def test_a_url_with_user_info_still_sends_it_as_basic_auth() -> None:
    server = Recording(OK)
    replies = await exchange(server, "http://gate:s3cret@127.0.0.1:{port}/push_msg.php", count=2)
    assert replies == [(200, b"ok")] * 2
    expected = b"authorization: basic " + base64.b64encode(b"gate:s3cret").lower()
    assert all(expected in head.lower().split(b"\r\n") for head in server.heads)


async def test_a_reply_is_read_up_to_its_declared_length_and_no_further() -> None:
    # What lets a reply of a declared length within the cap skip the cap's scope.
    server = Recording(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + b"x" * 4096)
    replies = await exchange(server, "http://127.0.0.1:{port}/push_msg.php")
    assert replies == [(200, b"ok")]


async def test_a_chunked_reply_that_also_declares_a_small_length_is_still_capped() -> None:
    # The body's framing is its transfer coding (RFC 9112), not its declared length.
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(40))
    server = Recording(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
        + body
        + b"0\r\n\r\n"
    )
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    transport = HttpxTransport()
    raised: BaseException | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, listener)
        try:
            with anyio.fail_after(10):
                await transport.request(WireRequest("POST", f"http://127.0.0.1:{port}/p"))
        except ReplyTooLarge as error:
            raised = error
        finally:
            await transport.aclose()
            tg.cancel_scope.cancel()
    assert isinstance(raised, ReplyTooLarge)


async def test_a_plain_url_goes_past_httpxs_client_layer_so_httpx_logs_no_request_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The direct route is taken (httpx's `send` writes an INFO line per request); a URL
    # with user info still goes through `send`, and is logged.
    caplog.set_level(logging.INFO, logger="httpx")
    await exchange(Recording(OK), "http://127.0.0.1:{port}/push_msg.php")
    assert not [r for r in caplog.records if r.name == "httpx"]
    await exchange(Recording(OK), "http://gate:pw@127.0.0.1:{port}/push_msg.php")
    assert [r for r in caplog.records if r.name == "httpx"]
