"""aiosms's own httpcore pool: locks taken without a trip through the event loop,
no shielded scope for closing nothing, and the same outcomes as httpcore's own."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import httpcore
import httpx
import pytest

from aiosms import Message
from aiosms._transport import HttpxTransport, WireRequest, _Connection, _Pool, _QuickLock
from aiosms.testing import FakeThousandSms

pytestmark = pytest.mark.anyio


def pool_of(transport: HttpxTransport) -> httpcore.AsyncConnectionPool:
    pool: httpcore.AsyncConnectionPool = transport._client._transport._pool  # type: ignore[attr-defined]
    return pool


async def test_a_free_lock_is_taken_without_letting_another_task_run() -> None:
    lock = _QuickLock()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        async with lock:
            ran.append("holder")
        await anyio.lowlevel.checkpoint()
    assert ran == ["holder", "other"]


async def test_a_taken_lock_makes_the_next_task_wait_its_turn() -> None:
    lock = _QuickLock()
    order: list[str] = []

    async def second() -> None:
        async with lock:
            order.append("second")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, lock:
            tg.start_soon(second)
            await anyio.sleep(0.05)
            order.append("first")
    assert order == ["first", "second"]


async def test_a_lock_is_not_taken_in_a_cancelled_scope() -> None:
    lock = _QuickLock()
    entered = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with lock:
            entered = True
    assert scope.cancelled_caught
    assert not entered
    # Nothing was left held: the lock is free for the next task.
    with anyio.fail_after(1):
        async with lock:
            entered = True
    assert entered


async def test_aiosms_own_pool_serves_over_kept_alive_connections_with_quick_locks() -> None:
    fake = FakeThousandSms()
    transport = HttpxTransport(limits=httpx.Limits(max_connections=2))
    async with fake.serve() as base_url:
        request = fake_push(fake, base_url)
        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for _ in range(12):
                        tg.start_soon(transport.request, request)
            pool = pool_of(transport)
            connections = list(pool.connections)
        finally:
            await transport.aclose()
    assert isinstance(pool, _Pool)
    assert len(fake.ledger) == 12
    # Twelve requests, two connections at most: each kept alive and reused.
    assert 1 <= len(connections) <= 2
    for connection in connections:
        assert isinstance(connection, _Connection)
        assert isinstance(connection._request_lock, _QuickLock)
        assert isinstance(connection._connection._state_lock, _QuickLock)


def fake_push(fake: FakeThousandSms, base_url: str) -> WireRequest:
    """A push_msg request to the fake, as the 1000sms codec would build it."""
    return WireRequest(
        "POST",
        base_url,
        content=(
            f"method=push_msg&email={fake.email}&password={fake.password}"
            "&phone=79160000001&text=hi&sender_name=sms-tester&format=json"
        ).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


async def test_a_pool_waiting_for_a_connection_gets_every_reply_under_cancellation() -> None:
    # Ten callers on one connection; half are cancelled while they wait or send.
    fake = FakeThousandSms()
    async with (
        fake.serve() as base_url,
        fake.client(
            base_url=base_url, sender="sms-tester", limits=httpx.Limits(max_connections=1)
        ) as sms,
    ):
        sent: list[int] = []

        async def one(index: int) -> None:
            with anyio.move_on_after(0.001 if index % 2 else 10):
                await sms.send(Message(to="79160000001", text=f"m{index}"))
                sent.append(index)

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                for index in range(10):
                    tg.start_soon(one, index)
            # The client still works after the cancelled callers.
            receipt = await sms.send(Message(to="79160000001", text="after"))
    assert receipt.message_id is not None
    assert {i for i in sent if i % 2 == 0} == {0, 2, 4, 6, 8}
    with anyio.fail_after(5):
        while fake.open_connections:
            await anyio.sleep(0.01)
    assert fake.open_connections == 0


def test_a_proxys_pool_and_a_callers_pool_keep_httpcores_class() -> None:
    proxied = HttpxTransport(proxy=httpx.Proxy("http://127.0.0.1:3128"))
    mounts = list(proxied._client._mounts.values())
    assert mounts
    assert all(type(m._pool) is not _Pool for m in mounts)  # type: ignore[union-attr]
    client = httpx.AsyncClient()
    HttpxTransport(client=client)
    assert type(client._transport._pool) is httpcore.AsyncConnectionPool  # type: ignore[attr-defined]


async def test_callers_cancelled_before_their_connection_connects_leave_no_slot_behind() -> None:
    # Cancelled right after the pool gives each a connection to make: httpcore alone
    # keeps those connections, unconnected, and the pool's two slots are gone for good.
    fake = FakeThousandSms()
    async with fake.serve() as base_url:
        transport = HttpxTransport(
            limits=httpx.Limits(max_connections=2), timeout=httpx.Timeout(2.0)
        )
        try:
            for round_ in range(100):
                async with anyio.create_task_group() as callers:
                    for _ in range(4):
                        callers.start_soon(transport.request, fake_push(fake, base_url))
                    for _ in range(round_ % 7):
                        await anyio.lowlevel.checkpoint()
                    callers.cancel_scope.cancel()
            waiting = [c for c in pool_of(transport).connections if "CONNECTING" in repr(c)]
            assert waiting == []
            with anyio.fail_after(5):
                reply = await transport.request(fake_push(fake, base_url))
            assert reply.status_code == 200
        finally:
            await transport.aclose()
