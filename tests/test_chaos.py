"""A campaign under chaos, over real sockets: nothing lost, nothing sent twice, nothing leaked.

Each run sends 20,000 messages through a Batcher to a fake gateway on 127.0.0.1 that
hits about 5% of requests with a random fault (delays, 5xx with and without
Retry-After, resets before and after the work, broken bodies, wrong packet counts,
internal errors, stalls past the client's read timeout). Afterwards, per message:
exactly one outcome; no message accepted twice; every accepted message has a receipt
with its id or an unknown outcome (never "not sent"); and no connection stays open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import aiosms
from aiosms import DeliveryState
from aiosms.testing import CHAOS_FAULTS, FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

MESSAGES = 20_000
FAULT_RATE = 0.05
READ_TIMEOUT = 0.5
FAULTS = (*CHAOS_FAULTS, Fault.stall(READ_TIMEOUT * 3))
SENDS = {"my-sms": "send", "1000sms": "push_msg"}


def campaign(count: int) -> Iterator[aiosms.Message]:
    for i in range(count):
        yield aiosms.Message(to=f"79{i:09d}", text=f"m{i}", key=i)


def fake_for(gateway: str) -> FakeMySms | FakeThousandSms:
    if gateway == "my-sms":
        return FakeMySms(balance=10**9)
    return FakeThousandSms(balance=10**9)


async def run_campaign(gateway: str, transport: str | None) -> None:
    fake = fake_for(gateway)
    fake.faults.chaos(FAULT_RATE, FAULTS, seed=7, endpoints=[SENDS[gateway]])
    options: dict[str, Any] = {
        "timeout": httpx.Timeout(5.0, read=READ_TIMEOUT),
        "retry": aiosms.RetryPolicy(initial_delay=0.01, max_retry_after=0.05),
        "max_concurrency": 10,
    }
    if transport is not None:
        options["transport"] = transport
    # my-sms packets are kept small so that thousands of requests meet the faults.
    batch = 10 if gateway == "my-sms" else 1
    receipts: dict[int, aiosms.Receipt] = {}
    async with fake.serve() as base_url:
        sender = "MyShop" if gateway == "my-sms" else "sms-tester"
        client = fake.client(base_url=base_url, sender=sender, **options)
        async with client, aiosms.Batcher(client, max_batch_size=batch, linger=0.01) as batcher:
            async for receipt in batcher.send_all(campaign(MESSAGES)):
                key = receipt.message.key
                assert key not in receipts, "a message got two outcomes"
                receipts[key] = receipt
        with anyio.fail_after(10):
            while fake.open_connections:
                await anyio.sleep(0.02)

    assert len(receipts) == MESSAGES
    ledger = {entry.text: entry for entry in fake.ledger}
    assert len(ledger) == len(fake.ledger), "the gateway accepted a message twice"
    states = dict.fromkeys(DeliveryState, 0)
    for key, receipt in receipts.items():
        states[receipt.state] += 1
        entry = ledger.get(f"m{key}")
        if entry is not None:
            # Accepted: either its receipt names it, or its outcome is unknown.
            if receipt.state is DeliveryState.UNKNOWN:
                assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
            else:
                assert receipt.state is DeliveryState.QUEUED
                assert receipt.message_id == entry.id
        else:
            # Not accepted: never reported as sent.
            assert receipt.state in (DeliveryState.UNKNOWN, DeliveryState.REJECTED)
            if receipt.state is DeliveryState.REJECTED:
                assert receipt.error is not None
                assert receipt.error.may_have_been_sent is False
    # The faults really happened, and most messages still went through.
    assert states[DeliveryState.UNKNOWN] > 0
    assert states[DeliveryState.QUEUED] > MESSAGES * 0.8
    assert fake.open_connections == 0


@pytest.mark.parametrize("gateway", ["my-sms", "1000sms"])
async def test_a_campaign_under_chaos_on_the_default_transport(gateway: str) -> None:
    await run_campaign(gateway, transport=None)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("gateway", ["my-sms", "1000sms"])
async def test_a_campaign_under_chaos_on_the_aiohttp_transport(gateway: str) -> None:
    await run_campaign(gateway, transport="aiohttp")
