"""The Batcher under load: memory that does not grow with the stream, and the rate cap.

Hand computation for the memory bound: holding one receipt with its message costs
about 360 bytes (a slotted Receipt ~96 B, a slotted Message ~80 B, a 36-character id
~85 B, an 11-digit number ~60 B, an int key ~28 B, a list slot 8 B), so holding
200,000 of them would take about 72 MB. With ``max_pending=2000`` the Batcher holds
at most 2,000 messages, their items and receipts, plus a few packets' request and
reply bodies: a few MB whatever the stream's length. The bound, 12 MB, is a sixth of
what holding the stream's receipts would take.

tracemalloc makes every allocation several times slower (about 150 µs a message
here instead of 20 µs), so this test takes about half a minute per backend.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from decimal import Decimal

import anyio
import pytest

from aiosms import Batcher, DeliveryState, Message
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
STREAM = 200_000
MAX_PENDING = 2_000
MEMORY_BOUND = 12 * 1024 * 1024


def stream_of(count: int) -> Iterator[Message]:
    for i in range(count):
        yield Message(to=f"7911{i:07d}", text="Campaign text", key=i)


async def test_send_all_over_a_long_stream_keeps_memory_bounded() -> None:
    fake = FakeMySms(balance=Decimal(10**9), latency=0.001)
    received = 0
    accepted = 0
    queued = 0
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(
            sms, max_batch_size=100, linger=0.01, max_concurrency=4, max_pending=MAX_PENDING
        ) as b,
    ):
        # Warm up first, so one-time costs (generated converters, caches) are not counted.
        async for _ in b.send_all(stream_of(500)):
            pass
        fake.ledger.clear()
        fake.messages.clear()
        tracemalloc.start()
        try:
            with anyio.fail_after(120):
                async for receipt in b.send_all(stream_of(STREAM)):
                    received += 1
                    queued += receipt.state is DeliveryState.QUEUED
                    if received % 1000 == 0:
                        # The fake's ledger would grow with the stream: count it and let it go.
                        accepted += len(fake.ledger)
                        fake.ledger.clear()
                        fake.messages.clear()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    accepted += len(fake.ledger)
    assert received == STREAM
    assert queued == STREAM
    assert accepted == STREAM
    assert peak < MEMORY_BOUND, f"peak traced memory {peak / 2**20:.1f} MiB"


async def test_rate_caps_messages_per_second_within_ten_percent() -> None:
    # 400 messages at 200 a second in packets of 10: the first packet goes at once
    # (the bucket holds one packet), the other 390 messages take 390 / 200 = 1.95 s.
    rate = 200
    fake = FakeMySms()
    arrivals: list[float] = []
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01, max_concurrency=4, rate=rate) as b,
    ):
        with anyio.fail_after(10):
            async for receipt in b.send_all(
                Message(to=f"7911{i:07d}", text="hi", key=i) for i in range(400)
            ):
                assert receipt.state is DeliveryState.QUEUED
                arrivals.append(anyio.current_time())
    assert len(arrivals) == 400
    assert [call.messages for call in fake.calls_to("send")] == [10] * 40
    # After the first packet (the burst), 390 messages.
    achieved = (400 - 10) / (arrivals[-1] - arrivals[9])
    assert 0.9 * rate <= achieved <= 1.1 * rate, f"{achieved:.1f} messages/s"
