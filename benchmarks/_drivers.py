"""aiosms as a user drives it, and the names of the rows that drive it.

Clients are built with the public options only (``max_concurrency``, ``limits``,
``transport``, ``packet_size``) and driven the way the README shows:
``Batcher.send_all``, ``Batcher.send`` from many tasks, ``send_many`` and ``send``.
Each driver is an async context manager yielding the send function the harness times;
the hand-written code aiosms is measured against lives in ``_baselines``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import anyio
import httpx

import aiosms
from benchmarks._baselines import OneFn
from benchmarks._common import MYSMS_SENDER, THOUSANDSMS_SENDER, SendFn, take
from benchmarks._server import (
    MYSMS_PASSWORD,
    MYSMS_USER,
    THOUSANDSMS_EMAIL,
    THOUSANDSMS_PASSWORD,
)

OneOpener = Callable[[], AbstractAsyncContextManager[OneFn]]
Transport = Literal["aiohttp"] | None

# Rows' names, which the tables print and the targets look up.
PLAIN_HTTPX = "plain httpx"
HTTPX_AIOHTTP = "httpx over httpx-aiohttp"
HAND_AIOHTTP = "hand aiohttp"
BATCHER_HTTPX = "aiosms Batcher · httpx"
SEND_MANY_HTTPX = "aiosms send_many · httpx"
SEND_MANY_TRIO = "aiosms send_many · httpx on trio"
BATCHER_AIOHTTP = "aiosms Batcher · aiohttp"
SEND_MANY_AIOHTTP = "aiosms send_many · aiohttp"
HAND_PACKED = "hand-packed httpx"
PACKET_BATCHER = "aiosms Batcher.send_all"
PACKET_SEND_MANY = "aiosms MySms.send_many"
SEND_HTTPX = "aiosms send · httpx"
SEND_AIOHTTP = "aiosms send · aiohttp"
BATCHER_HTTPX_DEFAULT = "aiosms Batcher · httpx, default limits"
SEND_MANY_HTTPX_DEFAULT = "aiosms send_many · httpx, default limits"
#: aiosms's default pool size (``aiosms.DEFAULT_LIMITS``).
DEFAULT_POOL = aiosms.DEFAULT_LIMITS.max_connections or 10
#: Requests in flight for the my-sms packet rows, every row alike: aiosms's default.
PACKET_CONCURRENCY = 10


def limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def sizing(concurrency: int | None, sized_limits: bool) -> dict[str, object]:
    """Client options for ``concurrency`` requests in flight (None: aiosms's defaults)."""
    options: dict[str, object] = {}
    if concurrency is not None:
        options["max_concurrency"] = concurrency
        if sized_limits:
            options["limits"] = limits(concurrency)
    return options


def thousandsms(
    base_url: str, concurrency: int | None, transport: Transport, *, sized_limits: bool = True
) -> aiosms.ThousandSms:
    sized = sizing(concurrency, sized_limits)
    return aiosms.ThousandSms(
        email=THOUSANDSMS_EMAIL,
        password=THOUSANDSMS_PASSWORD,
        sender=THOUSANDSMS_SENDER,
        base_url=f"{base_url}/",
        transport=transport,
        **sized,  # type: ignore[arg-type]
    )


def mysms(
    base_url: str,
    fmt: Literal["json", "xml"],
    concurrency: int | None,
    transport: Transport,
    packet_size: int = 100,
) -> aiosms.MySms:
    sized = sizing(concurrency, True)
    return aiosms.MySms(
        username=MYSMS_USER,
        password=MYSMS_PASSWORD,
        sender=MYSMS_SENDER,
        base_url=f"{base_url}/rest/sms/",
        format=fmt,
        transport=transport,
        packet_size=packet_size,
        **sized,  # type: ignore[arg-type]
    )


class _Orphans:
    """Receipts a Batcher could give to nobody (the run was interrupted)."""

    count = 0

    def add(self, receipt: aiosms.Receipt) -> None:
        self.count += 1


ORPHANS = _Orphans()


@asynccontextmanager
async def aiosms_batcher(
    client: aiosms.MySms | aiosms.ThousandSms,
    pool: list[aiosms.Message],
    *,
    max_batch_size: int = 100,
    max_concurrency: int | None = None,
) -> AsyncIterator[SendFn]:
    batcher = aiosms.Batcher(
        client,
        max_batch_size=max_batch_size,
        max_concurrency=max_concurrency,
        # Only an interrupted run has receipts nobody waits for: count them, don't log
        # each one.
        on_receipt=ORPHANS.add,
    )
    async with client, batcher:

        async def send(start: int, count: int) -> int:
            ok = 0
            async for receipt in batcher.send_all(take(pool, start, count)):
                ok += receipt.ok
            return ok

        yield send


@asynccontextmanager
async def aiosms_send_many(
    client: aiosms.MySms | aiosms.ThousandSms, pool: list[aiosms.Message]
) -> AsyncIterator[SendFn]:
    async with client:

        async def send(start: int, count: int) -> int:
            receipts = await client.send_many(take(pool, start, count))
            return sum(receipt.ok for receipt in receipts)

        yield send


@asynccontextmanager
async def aiosms_single(
    client: aiosms.MySms | aiosms.ThousandSms, pool: list[aiosms.Message]
) -> AsyncIterator[OneFn]:
    async with client:

        async def one(index: int) -> bool:
            receipt = await client.send(pool[index % len(pool)])
            return receipt.ok

        yield one


@asynccontextmanager
async def aiosms_callers(
    client: aiosms.MySms, pool: list[aiosms.Message], callers: int, max_pending: int
) -> AsyncIterator[SendFn]:
    """``callers`` tasks sharing one Batcher, each awaiting ``send`` in a loop (a web
    app's requests); beyond ``max_pending`` of them wait for room."""
    batcher = aiosms.Batcher(client, max_pending=max_pending, on_receipt=ORPHANS.add)
    async with client, batcher:

        async def send(start: int, count: int) -> int:
            ok = 0

            async def caller(first: int) -> None:
                nonlocal ok
                for index in range(first, start + count, callers):
                    try:
                        await batcher.send(pool[index % len(pool)])
                        ok += 1
                    except aiosms.SmsError:
                        pass

            async with anyio.create_task_group() as tg:
                for first in range(start, start + min(callers, count)):
                    tg.start_soon(caller, first)
            return ok

        yield send
