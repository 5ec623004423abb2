"""Hand-written baselines: the best plain code a user could write without aiosms.

Each opener is an async context manager that sets up one client and yields a send
function; the harness times calls to it. Baselines may use asyncio directly (they
are what aiosms is measured against, and aiohttp runs on asyncio only). Each does
the work aiosms does for the same messages: build the body, send it, parse the
reply and count the messages the gateway accepted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import xmltodict

from benchmarks._common import (
    MYSMS_SENDER,
    POOL_SIZE,
    TEXT,
    THOUSANDSMS_SENDER,
    SendFn,
    phone,
)
from benchmarks._server import (
    MYSMS_PASSWORD,
    MYSMS_USER,
    THOUSANDSMS_EMAIL,
    THOUSANDSMS_PASSWORD,
)

httpx_aiohttp: Any
try:  # optional: only for the httpx-over-aiohttp baseline (pip install httpx-aiohttp)
    import httpx_aiohttp
except ImportError:  # pragma: no cover - depends on the environment
    httpx_aiohttp = None

FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
JSON = {"content-type": "application/json; charset=utf-8"}
XML = {"content-type": "application/xml; charset=utf-8"}
TIMEOUT = 30.0

#: One request, timed by the harness: ``one(index)`` is True when the gateway accepted it.
OneFn = Callable[[int], Awaitable[bool]]

_PHONES = [phone(i) for i in range(POOL_SIZE)]
_MYSMS_AUTH = {"username": MYSMS_USER, "password": MYSMS_PASSWORD}
_MYSMS_DICTS = [{"source": MYSMS_SENDER, "destination": p, "text": TEXT} for p in _PHONES]


def httpx_aiohttp_available() -> bool:
    return httpx_aiohttp is not None


def push_msg_body(index: int) -> bytes:
    fields = {
        "method": "push_msg",
        "email": THOUSANDSMS_EMAIL,
        "password": THOUSANDSMS_PASSWORD,
        "phone": _PHONES[index % POOL_SIZE],
        "text": TEXT,
        "sender_name": THOUSANDSMS_SENDER,
        "format": "json",
    }
    return urlencode(fields).encode()


def push_msg_ok(body: bytes) -> bool:
    reply = json.loads(body)
    return str(reply["msg"]["err_code"]) == "0" and bool(reply["data"]["id"])


def mysms_chunk(start: int, size: int) -> list[dict[str, str]]:
    at = start % POOL_SIZE
    chunk = _MYSMS_DICTS[at : at + size]
    while len(chunk) < size:
        chunk += _MYSMS_DICTS[: size - len(chunk)]
    return chunk


def mysms_json_body(chunk: list[dict[str, str]]) -> bytes:
    payload = {"auth": _MYSMS_AUTH, "data": chunk}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def mysms_json_ok(body: bytes, sent: int) -> int:
    reply = json.loads(body)
    data = reply.get("data") or []
    if str(reply["state"]) != "0" or len(data) != sent:
        return 0
    return sum(1 for entry in data if str(entry["state"]) == "2")


def mysms_xml_body(chunk: list[dict[str, str]]) -> bytes:
    payload = {"sendSMS": {"auth": _MYSMS_AUTH, "data": {"message": chunk}}}
    return xmltodict.unparse(payload, encoding="utf-8").encode()


def mysms_xml_ok(body: bytes, sent: int) -> int:
    (content,) = xmltodict.parse(body, force_list=("message",), xml_attribs=False).values()
    data = (content.get("data") or {}).get("message") or []
    if str(content["state"]) != "0" or len(data) != sent:
        return 0
    return sum(1 for entry in data if str(entry["state"]) == "2")


async def _workers(count: int, concurrency: int, work: Callable[[int], Awaitable[int]]) -> int:
    """``concurrency`` tasks pulling from one shared iterator; the sum of what they return."""
    indexes = iter(range(count))
    total = 0

    async def worker() -> None:
        nonlocal total
        for index in indexes:
            # Not ``total += await …``: that reads ``total`` before the await.
            done = await work(index)
            total += done

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return total


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def _httpx_client(concurrency: int, over_aiohttp: bool = False) -> httpx.AsyncClient:
    transport: httpx.AsyncBaseTransport | None = None
    if over_aiohttp:
        if httpx_aiohttp is None:
            raise RuntimeError("httpx-aiohttp is not installed")
        transport = httpx_aiohttp.AiohttpTransport(limits=_limits(concurrency))
    return httpx.AsyncClient(
        limits=_limits(concurrency), timeout=TIMEOUT, transport=transport, trust_env=False
    )


def _aiohttp_session(concurrency: int) -> Any:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT), trust_env=False
    )


# -- 1000sms fan-out: one push_msg request per message ----------------------------------


@asynccontextmanager
async def httpx_fanout(
    url: str, concurrency: int, *, over_aiohttp: bool = False
) -> AsyncIterator[SendFn]:
    async with _httpx_client(concurrency, over_aiohttp) as client:

        async def push(index: int) -> int:
            response = await client.post(url, content=push_msg_body(index), headers=FORM)
            return push_msg_ok(response.content)

        async def send(start: int, count: int) -> int:
            return await _workers(count, concurrency, lambda i: push(start + i))

        yield send


@asynccontextmanager
async def aiohttp_fanout(url: str, concurrency: int) -> AsyncIterator[SendFn]:
    async with _aiohttp_session(concurrency) as session:

        async def push(index: int) -> int:
            async with session.post(url, data=push_msg_body(index), headers=FORM) as response:
                body = await response.read()
            return push_msg_ok(body)

        async def send(start: int, count: int) -> int:
            return await _workers(count, concurrency, lambda i: push(start + i))

        yield send


# -- my-sms packets ----------------------------------------------------------------------


@asynccontextmanager
async def httpx_packets(
    base_url: str, fmt: str, size: int, concurrency: int
) -> AsyncIterator[SendFn]:
    url = f"{base_url}/rest/sms/send/{fmt}"
    build, parse, headers = (
        (mysms_json_body, mysms_json_ok, JSON)
        if fmt == "json"
        else (mysms_xml_body, mysms_xml_ok, XML)
    )
    async with _httpx_client(concurrency) as client:

        async def send(start: int, count: int) -> int:
            packets = -(-count // size)

            async def packet(number: int) -> int:
                first = number * size
                chunk = mysms_chunk(start + first, min(size, count - first))
                response = await client.post(url, content=build(chunk), headers=headers)
                return parse(response.content, len(chunk))

            return await _workers(packets, concurrency, packet)

        yield send


# -- single sends, one at a time ---------------------------------------------------------


@asynccontextmanager
async def httpx_single(base_url: str, gateway: str) -> AsyncIterator[OneFn]:
    async with _httpx_client(1) as client:
        if gateway == "mysms":
            url = f"{base_url}/rest/sms/send/json"

            async def one(index: int) -> bool:
                chunk = mysms_chunk(index, 1)
                response = await client.post(url, content=mysms_json_body(chunk), headers=JSON)
                return mysms_json_ok(response.content, 1) == 1

        else:
            url = f"{base_url}/"

            async def one(index: int) -> bool:
                response = await client.post(url, content=push_msg_body(index), headers=FORM)
                return push_msg_ok(response.content)

        yield one


@asynccontextmanager
async def aiohttp_single(base_url: str, gateway: str) -> AsyncIterator[OneFn]:
    async with _aiohttp_session(1) as session:
        if gateway == "mysms":
            url = f"{base_url}/rest/sms/send/json"

            async def one(index: int) -> bool:
                body = mysms_json_body(mysms_chunk(index, 1))
                async with session.post(url, data=body, headers=JSON) as response:
                    reply = await response.read()
                return mysms_json_ok(reply, 1) == 1

        else:
            url = f"{base_url}/"

            async def one(index: int) -> bool:
                async with session.post(url, data=push_msg_body(index), headers=FORM) as response:
                    reply = await response.read()
                return push_msg_ok(reply)

        yield one


# -- the server's own ceiling: a minimal raw HTTP/1.1 client -----------------------------


def raw_request(port: int, path: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _RawConnection(asyncio.Protocol):
    """Sends one request, waits for the whole reply, sends the next (keep-alive, no pipelining)."""

    def __init__(self, request: bytes, budget: _Budget, done: asyncio.Future[None]) -> None:
        self.request = request
        self.budget = budget
        self.done = done
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if self.budget.take():
            self.transport.write(self.request)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buffer) < end + 4 + length:
            return
        if not head.startswith(b"http/1.1 200"):
            self.budget.failed += 1
        del buffer[: end + 4 + length]
        self.budget.replies += 1
        self._next()


class _Budget:
    def __init__(self, max_requests: int, deadline: float) -> None:
        self.left = max_requests
        self.deadline = deadline
        self.replies = 0
        self.failed = 0

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.left -= 1
        return True


async def raw_ceiling(
    port: int, request: bytes, connections: int, max_requests: int, max_seconds: float
) -> tuple[int, int, float]:
    """Replies, failed replies and seconds for up to ``max_requests`` over ``connections``."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    budget = _Budget(max_requests, started + max_seconds)
    finished: list[asyncio.Future[None]] = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        finished.append(done)
        await loop.create_connection(
            functools.partial(_RawConnection, request, budget, done), "127.0.0.1", port
        )
    await asyncio.wait_for(asyncio.gather(*finished), max_seconds + 30)
    return budget.replies, budget.failed, time.perf_counter() - started
