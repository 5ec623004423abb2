"""The Batcher's per-packet hooks: ``before_send`` decides what goes, ``after_send`` sees
what came back before callers do. Expected values come from the hooks' contract in the
Batcher's docstring; the fake's ledger says what really reached the gateway."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import anyio
import pytest

from aiosms import Batcher, ClosedError, DeliveryState, Message, Receipt, SmsError
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"


def numbered(i: int) -> Message:
    return Message(to=f"7911{i:07d}", text=f"message {i}", key=i)


async def test_before_send_is_awaited_once_per_packet_with_the_packets_messages() -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    seen: list[list[int]] = []

    async def before(messages: Sequence[Message]) -> list[bool]:
        seen.append([m.key for m in messages])
        return [True] * len(messages)

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, before_send=before) as batcher,
    ):
        receipts = [r async for r in batcher.send_all(numbered(i) for i in range(35))]
    assert sorted(len(packet) for packet in seen) == [5, 10, 10, 10]
    assert sorted(k for packet in seen for k in packet) == list(range(35))
    assert all(r.ok for r in receipts)
    assert len(fake.ledger) == 35


async def test_messages_before_send_refuses_are_rejected_and_never_reach_the_gateway() -> None:
    fake = FakeMySms(balance=Decimal(10**6))

    async def odd_only(messages: Sequence[Message]) -> list[bool]:
        return [m.key % 2 == 1 for m in messages]

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, before_send=odd_only) as batcher,
    ):
        receipts = {r.message.key: r async for r in batcher.send_all(map(numbered, range(20)))}
    assert sorted(e.phone for e in fake.ledger) == [numbered(i).to for i in range(1, 20, 2)]
    for key in range(0, 20, 2):
        refused = receipts[key]
        assert refused.state is DeliveryState.REJECTED
        assert isinstance(refused.error, SmsError)
        assert refused.error.may_have_been_sent is False
        assert "before_send" in str(refused.error)
    assert all(receipts[key].ok for key in range(1, 20, 2))


async def test_a_failing_before_send_sends_nothing_of_the_packet_and_stops_the_batcher() -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    calls = 0

    async def broken(messages: Sequence[Message]) -> list[bool]:
        nonlocal calls
        calls += 1
        raise OSError("disk full")

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=5, max_concurrency=1, before_send=broken) as batcher,
    ):
        receipts = [r async for r in batcher.send_all(map(numbered, range(20)))]
    assert fake.ledger == []
    assert fake.calls_to("send") == []
    assert len(receipts) == 20
    assert all(r.state is DeliveryState.REJECTED for r in receipts)
    assert all(isinstance(r.error, ClosedError) for r in receipts)
    assert calls == 1


async def test_before_send_giving_the_wrong_number_of_answers_sends_nothing() -> None:
    fake = FakeMySms(balance=Decimal(10**6))

    async def short(messages: Sequence[Message]) -> list[bool]:
        return [True]

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=5, before_send=short) as batcher,
    ):
        receipts = [r async for r in batcher.send_all(map(numbered, range(5)))]
    assert fake.ledger == []
    assert all(r.state is DeliveryState.REJECTED for r in receipts)


async def test_after_send_sees_the_sent_receipts_before_the_caller_does() -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    recorded: set[int] = set()
    order_ok = True

    async def before(messages: Sequence[Message]) -> list[bool]:
        return [m.key != 3 for m in messages]

    async def after(receipts: Sequence[Receipt]) -> None:
        await anyio.sleep(0.01)
        recorded.update(r.message.key for r in receipts)

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=4, before_send=before, after_send=after) as batcher,
    ):
        async for receipt in batcher.send_all(map(numbered, range(12))):
            if receipt.message.key != 3 and receipt.message.key not in recorded:
                order_ok = False
    assert order_ok
    # The refused message never went, so after_send never saw it.
    assert recorded == set(range(12)) - {3}


async def test_a_failing_after_send_still_delivers_the_receipts_and_stops_later_sends() -> None:
    fake = FakeMySms(balance=Decimal(10**6))

    async def broken(receipts: Sequence[Receipt]) -> None:
        raise OSError("disk full")

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=5, max_concurrency=1, after_send=broken) as batcher,
    ):
        receipts = [r async for r in batcher.send_all(map(numbered, range(15)))]
    assert len(fake.ledger) == 5
    assert sum(r.ok for r in receipts) == 5
    assert sum(r.state is DeliveryState.REJECTED for r in receipts) == 10


async def test_hooks_apply_to_single_sends_too() -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    packets: list[int] = []

    async def before(messages: Sequence[Message]) -> list[bool]:
        packets.append(len(messages))
        return [False] * len(messages)

    async with fake.client(sender=SENDER) as sms, Batcher(sms, before_send=before) as batcher:
        with pytest.raises(SmsError, match="before_send") as refused:
            await batcher.send(numbered(1))
    assert packets == [1]
    assert refused.value.may_have_been_sent is False
    assert fake.ledger == []


async def test_a_packet_allowed_while_another_stopped_the_batcher_is_not_sent_and_reported() -> (
    None
):
    fake = FakeMySms(balance=Decimal("1.5"))  # one message's worth
    first_settled = anyio.Event()
    second_asked = anyio.Event()
    reported: list[Receipt] = []

    async def before(messages: Sequence[Message]) -> list[bool]:
        if messages[0].key == 0:
            await second_asked.wait()
        else:
            # Allowed only once the first packet's refusal has stopped the Batcher.
            second_asked.set()
            await first_settled.wait()
        return [True] * len(messages)

    async def after(receipts: Sequence[Receipt]) -> None:
        reported.extend(receipts)
        first_settled.set()

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(
            sms, max_batch_size=5, max_concurrency=2, before_send=before, after_send=after
        ) as batcher,
    ):
        receipts = [r async for r in batcher.send_all(map(numbered, range(10)))]
    assert len(fake.ledger) == 1
    assert len(fake.calls_to("send")) == 1
    assert sum(r.ok for r in receipts) == 1
    # after_send heard of all ten, the second packet's as not sent.
    assert len(reported) == 10
    assert all(r.error is not None and not r.error.may_have_been_sent for r in reported[5:])
