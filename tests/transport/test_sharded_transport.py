"""The default transport: requests spread over small httpx pools, every pool closed."""

from __future__ import annotations

import gc

import anyio
import httpx
import pytest

import aiosms
from aiosms._client import BaseClient
from aiosms._sharded import SHARD_CONNECTIONS, ShardedTransport
from aiosms._transport import HttpxTransport
from aiosms.testing import FakeThousandSms

pytestmark = pytest.mark.anyio


def msgs(count: int) -> list[aiosms.Message]:
    return [aiosms.Message(to=f"7916{i:07d}", text=f"n{i}") for i in range(count)]


def client(fake: FakeThousandSms, base_url: str, **options: object) -> aiosms.ThousandSms:
    return aiosms.ThousandSms(
        email=fake.email,
        password=fake.password,
        sender="sms-tester",
        base_url=base_url,
        **options,  # type: ignore[arg-type]
    )


def sharded(sms: BaseClient) -> ShardedTransport:
    transport = sms._transport
    assert isinstance(transport, ShardedTransport)
    return transport


def pool_connections(shard: httpx.AsyncClient) -> int:
    pool = shard._transport._pool  # type: ignore[attr-defined]
    return len(pool.connections)


class PeakConnections:
    """Samples the fake's open connections while a test's requests are in flight."""

    def __init__(self, fake: FakeThousandSms) -> None:
        self.fake = fake
        self.peak = 0

    async def watch(self) -> None:
        with anyio.fail_after(30):
            while True:
                self.peak = max(self.peak, self.fake.open_connections)
                await anyio.sleep(0.005)


async def wait_until_closed(fake: FakeThousandSms) -> None:
    with anyio.fail_after(5):
        while fake.open_connections:
            await anyio.sleep(0.01)


async def test_requests_in_flight_are_spread_so_no_pool_grows_past_its_share() -> None:
    fake = FakeThousandSms(latency=0.5)
    seen: list[list[int]] = []
    async with fake.serve() as base_url, client(fake, base_url, max_concurrency=20) as sms:
        transport = sharded(sms)

        async def look() -> None:
            await anyio.sleep(0.3)
            seen.append([pool_connections(shard) for shard in transport.shards])

        async with anyio.create_task_group() as tg:
            tg.start_soon(look)
            receipts = await sms.send_many(msgs(20))
        in_flight_at_server = fake.open_connections
    assert all(r.ok for r in receipts)
    assert len(fake.ledger) == 20
    (per_shard,) = seen
    assert len(per_shard) == 20 // SHARD_CONNECTIONS
    assert per_shard == [SHARD_CONNECTIONS] * (20 // SHARD_CONNECTIONS)
    assert in_flight_at_server == 20


async def test_max_concurrency_alone_is_the_number_of_requests_in_flight() -> None:
    fake = FakeThousandSms(latency=0.3)
    peak = PeakConnections(fake)
    async with fake.serve() as base_url, client(fake, base_url, max_concurrency=30) as sms:
        async with anyio.create_task_group() as tg:
            tg.start_soon(peak.watch)
            receipts = await sms.send_many(msgs(60))
            tg.cancel_scope.cancel()
        assert sharded(sms).max_connections == 30
    assert all(r.ok for r in receipts)
    assert peak.peak == 30


async def test_explicit_limits_are_the_total_split_across_shards() -> None:
    fake = FakeThousandSms(latency=0.3)
    peak = PeakConnections(fake)
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=7)
    async with (
        fake.serve() as base_url,
        client(fake, base_url, max_concurrency=20, limits=limits) as sms,
    ):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peak.watch)
            receipts = await sms.send_many(msgs(21))
            tg.cancel_scope.cancel()
        transport = sharded(sms)
        sizes = [
            shard._transport._pool._max_connections  # type: ignore[attr-defined]
            for shard in transport.shards
        ]
    assert all(r.ok for r in receipts)
    assert sorted(sizes, reverse=True) == [4, 3]
    assert peak.peak == 7


async def test_one_request_at_a_time_builds_a_single_shard() -> None:
    fake = FakeThousandSms()
    async with fake.serve() as base_url, client(fake, base_url, max_concurrency=50) as sms:
        for message in msgs(5):
            assert (await sms.send(message)).ok
        transport = sharded(sms)
        assert len(transport.shards) == 1
        assert transport.shard_limit == 50 // SHARD_CONNECTIONS
        assert pool_connections(transport.shards[0]) == 1


async def test_aclose_closes_every_shard_and_every_socket() -> None:
    fake = FakeThousandSms(latency=0.2)
    async with fake.serve() as base_url:
        sms = client(fake, base_url, max_concurrency=15)
        async with sms:
            await sms.send_many(msgs(15))
            shards = sharded(sms).shards
        await wait_until_closed(fake)
    assert len(shards) == 3
    assert all(shard.is_closed for shard in shards)
    assert all(pool_connections(shard) == 0 for shard in shards)
    assert fake.open_connections == 0


async def test_cancelling_a_fan_out_in_flight_leaves_no_socket_open() -> None:
    fake = FakeThousandSms(latency=2.0)
    async with fake.serve() as base_url:
        sms = client(fake, base_url, max_concurrency=12)
        async with sms:
            with anyio.move_on_after(0.5) as scope:
                await sms.send_many(msgs(24))
            assert scope.cancelled_caught
            shards = sharded(sms).shards
        await wait_until_closed(fake)
    assert len(shards) == 3
    assert all(shard.is_closed for shard in shards)
    assert fake.open_connections == 0


async def test_a_cancelled_caller_still_closes_every_shard() -> None:
    fake = FakeThousandSms(latency=2.0)
    async with fake.serve() as base_url:
        sms = client(fake, base_url, max_concurrency=10)
        with anyio.move_on_after(0.5):
            async with sms:
                await sms.send_many(msgs(10))
        shards = sharded(sms).shards
        await wait_until_closed(fake)
    assert sms.closed
    assert len(shards) == 2
    assert all(shard.is_closed for shard in shards)


async def test_a_callers_http_client_is_used_as_is_without_shards() -> None:
    fake = FakeThousandSms()
    async with fake.serve() as base_url, httpx.AsyncClient() as own:
        async with client(fake, base_url, http_client=own, max_concurrency=50) as sms:
            assert isinstance(sms._transport, HttpxTransport)
            assert (await sms.send(msgs(1)[0])).ok
        assert not own.is_closed


async def test_a_send_cut_by_the_gateway_is_unknown_and_sent_once_through_a_shard() -> None:
    from aiosms.testing import Fault

    fake = FakeThousandSms()
    fake.faults.add(Fault.reset_after())
    async with fake.serve() as base_url, client(fake, base_url, max_concurrency=20) as sms:
        receipts = await sms.send_many(msgs(1))
    (receipt,) = receipts
    assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
    assert len(fake.ledger) == 1


async def test_finished_requests_leave_no_response_for_the_garbage_collector() -> None:
    # A response left in a reference cycle waits for a collection, and collections
    # grow costly with many requests in flight: every reply must be freed at once.
    fake = FakeThousandSms()
    async with fake.serve() as base_url, client(fake, base_url, max_concurrency=10) as sms:
        assert (await sms.send(msgs(1)[0])).ok
        gc.collect()
        gc.disable()
        try:
            receipts = await sms.send_many(msgs(30))
            left = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
        finally:
            gc.enable()
    assert all(r.ok for r in receipts)
    assert len(fake.ledger) == 31
    assert left == []
