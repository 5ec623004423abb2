"""Proxies and custom CAs: the ``proxy``, ``verify`` and ``trust_env`` client options."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import certifi
import httpx
import pytest
from anyio.abc import ByteStream, SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

import aiosms
from aiosms._sharded import ShardedTransport
from aiosms.testing import FakeThousandSms

pytestmark = pytest.mark.anyio

MESSAGE = aiosms.Message(to="79160000000", text="Hi")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class LoopbackProxy:
    """An HTTP proxy on 127.0.0.1: records each connection's first request line, then
    forwards the bytes both ways to the fake gateway (which accepts absolute-form
    targets, as any HTTP/1.1 server must)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.request_lines: list[str] = []
        self.url = ""

    async def _pipe(self, source: ByteStream, sink: ByteStream) -> None:
        try:
            async for chunk in source:
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            await sink.aclose()

    async def _serve(self, client: SocketStream) -> None:
        async with client:
            reader = BufferedByteReceiveStream(client)
            try:
                head = await reader.receive_until(b"\r\n\r\n", 64 * 1024)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return
            self.request_lines.append(head.split(b"\r\n", 1)[0].decode())
            upstream = await anyio.connect_tcp("127.0.0.1", self.upstream_port)
            async with upstream:
                await upstream.send(head + b"\r\n\r\n" + reader.buffer)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pipe, upstream, client)
                    await self._pipe(client, upstream)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[LoopbackProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.url = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._serve)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


@asynccontextmanager
async def gateway_and_proxy() -> AsyncIterator[tuple[FakeThousandSms, str, LoopbackProxy]]:
    fake = FakeThousandSms()
    async with fake.serve() as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        async with LoopbackProxy(port).run() as proxy:
            yield fake, base_url, proxy


def thousandsms(fake: FakeThousandSms, base_url: str, **options: object) -> aiosms.ThousandSms:
    return aiosms.ThousandSms(
        email=fake.email,
        password=fake.password,
        sender="sms-tester",
        base_url=base_url,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_the_proxy_option_sends_every_request_through_the_proxy(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    async with (
        gateway_and_proxy() as (fake, base_url, proxy),
        thousandsms(fake, base_url, proxy=proxy.url) as sms,
    ):
        receipt = await sms.send(MESSAGE)
    assert receipt.ok
    assert len(fake.ledger) == 1
    (line,) = proxy.request_lines
    assert line.startswith(f"POST {base_url}")
    assert line.endswith(" HTTP/1.1")


async def test_a_proxy_from_the_environment_is_ignored_by_default(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    async with gateway_and_proxy() as (fake, base_url, proxy):
        no_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        async with thousandsms(fake, base_url) as sms:
            receipt = await sms.send(MESSAGE)
    assert receipt.ok
    assert proxy.request_lines == []


async def test_trust_env_honours_a_proxy_from_the_environment(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    async with gateway_and_proxy() as (fake, base_url, proxy):
        no_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        async with thousandsms(fake, base_url, trust_env=True) as sms:
            receipt = await sms.send(MESSAGE)
    assert receipt.ok
    (line,) = proxy.request_lines
    assert line.startswith(f"POST {base_url}")


async def test_every_shard_goes_through_the_proxy(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    messages = [aiosms.Message(to=f"7916000000{i}", text="Hi") for i in range(10)]
    async with gateway_and_proxy() as (fake, base_url, proxy):
        fake.latency = 0.2
        async with thousandsms(fake, base_url, proxy=proxy.url, max_concurrency=10) as sms:
            receipts = await sms.send_many(messages)
            shards = len(sms._transport.shards)  # type: ignore[attr-defined]
    assert all(r.ok for r in receipts)
    assert shards == 2
    assert len(proxy.request_lines) == 10
    assert all(line.startswith(f"POST {base_url}") for line in proxy.request_lines)


def test_verify_takes_a_ca_bundle_path_or_a_context() -> None:
    fake = FakeThousandSms()
    by_path = thousandsms(fake, "https://gateway.example/", verify=certifi.where())
    assert isinstance(by_path._transport, ShardedTransport)
    context = ssl.create_default_context()
    by_context = thousandsms(fake, "https://gateway.example/", verify=context)
    shard = by_context._transport.shards[0]  # type: ignore[attr-defined]
    assert shard._transport._pool._ssl_context is context


def test_verify_false_and_unreadable_bundles_are_refused_before_any_traffic(
    tmp_path: object,
) -> None:
    fake = FakeThousandSms()
    with pytest.raises(aiosms.ValidationError) as off:
        thousandsms(fake, "https://gateway.example/", verify=False)
    assert off.value.field == "verify"
    with pytest.raises(aiosms.ValidationError) as missing:
        thousandsms(fake, "https://gateway.example/", verify="/nonexistent/ca.pem")
    assert missing.value.field == "verify"


def test_proxy_and_verify_apply_to_aiosms_own_pool_only() -> None:
    fake = FakeThousandSms()
    with pytest.raises(aiosms.ValidationError) as own_client:
        thousandsms(fake, "http://x/", http_client=httpx.AsyncClient(), proxy="http://p:3128")
    assert own_client.value.field == "proxy"
    with pytest.raises(aiosms.ValidationError) as own_transport:
        thousandsms(
            fake,
            "http://x/",
            http_transport=httpx.MockTransport(lambda r: httpx.Response(200)),
            verify=ssl.create_default_context(),
        )
    assert own_transport.value.field == "verify"
    with pytest.raises(aiosms.ValidationError) as bad_scheme:
        thousandsms(fake, "http://x/", proxy="ftp://p:21")
    assert bad_scheme.value.field == "proxy"
