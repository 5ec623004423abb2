"""Every way a packet ends without its request: each message gets one receipt saying so.

The open packet (messages waiting for company) fails when the Batcher stops sending
(an account-level refusal, a failing hook) or is cancelled; a hook cancelled mid-way
leaves its packet unsent (``before_send``) or delivered as sent (``after_send``).
Expected values come from the Batcher's contract (its docstring, DESIGN.md "Semantics
that matter"): a message that never left is REJECTED with ``may_have_been_sent``
false; the fake's ledger and call log say what really reached the gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message, Receipt
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
PLENTY = Decimal(10**9)


def numbered(i: int) -> Message:
    return Message(to=f"7911{i:07d}", text=f"message {i}", key=i)


def assert_not_sent(receipt: Receipt, kind: type[aiosms.SmsError]) -> None:
    assert receipt.state is DeliveryState.REJECTED, receipt
    assert isinstance(receipt.error, kind), receipt.error
    assert not receipt.error.may_have_been_sent


async def test_an_account_level_stop_fails_the_messages_waiting_in_the_open_packet() -> None:
    # The first packet is in flight (the fake answers after 0.3 s) when a third
    # message joins the next, open packet; the refusal of the first fails it at once.
    fake = FakeMySms(latency=0.3)
    outcomes: dict[int, BaseException] = {}

    async def send(b: Batcher, i: int) -> None:
        try:
            await b.send(numbered(i))
        except aiosms.SmsError as error:
            outcomes[i] = error

    with anyio.fail_after(5):
        async with (
            fake.client(sender=SENDER, password="wrong") as sms,
            # A linger of a minute: only the stop can end the open packet in time.
            Batcher(sms, max_batch_size=2, linger=60, max_concurrency=1) as b,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(send, b, 0)
            tg.start_soon(send, b, 1)
            while fake.in_flight < 1:
                await anyio.sleep(0.001)
            tg.start_soon(send, b, 2)

    assert sorted(outcomes) == [0, 1, 2]
    for error in outcomes.values():
        assert isinstance(error, aiosms.AuthenticationError)
        assert not error.may_have_been_sent
    assert fake.received["send"] == 1


async def test_a_failing_after_send_fails_the_messages_waiting_in_the_open_packet() -> None:
    fake = FakeMySms(balance=PLENTY)
    third_waits = anyio.Event()
    outcomes: dict[int, Receipt | BaseException] = {}

    async def broken(receipts: Sequence[Receipt]) -> None:
        await third_waits.wait()
        raise OSError("disk full")

    async def send(b: Batcher, i: int) -> None:
        try:
            outcomes[i] = await b.send(numbered(i))
        except aiosms.SmsError as error:
            outcomes[i] = error

    with anyio.fail_after(5):
        async with (
            fake.client(sender=SENDER) as sms,
            Batcher(sms, max_batch_size=2, linger=60, after_send=broken) as b,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(send, b, 0)
            tg.start_soon(send, b, 1)
            while fake.received["send"] < 1:
                await anyio.sleep(0.001)
            tg.start_soon(send, b, 2)
            # Every task is parked: the third message sits in the open packet.
            await anyio.wait_all_tasks_blocked()
            third_waits.set()

    # The first packet went: its receipts still reach their callers.
    assert isinstance(outcomes[0], Receipt)
    assert outcomes[0].ok
    assert isinstance(outcomes[1], Receipt)
    assert outcomes[1].ok
    third = outcomes[2]
    assert isinstance(third, aiosms.ClosedError)
    assert not third.may_have_been_sent
    assert len(fake.ledger) == 2


async def test_a_cancelled_batcher_fails_the_messages_waiting_in_the_open_packet() -> None:
    fake = FakeMySms(balance=PLENTY)
    receipts: list[Receipt] = []
    source_read = anyio.Event()

    async def source() -> AsyncIterator[Message]:
        for i in range(3):
            yield numbered(i)
        source_read.set()

    async def consume(b: Batcher) -> None:
        async for receipt in b.send_all(source()):
            receipts.append(receipt)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                # Three messages in a packet of ten that lingers a minute: none sealed.
                async with Batcher(sms, max_batch_size=10, linger=60) as b:
                    outer.start_soon(consume, b)
                    await source_read.wait()
                    batcher_scope.cancel()
                    await anyio.sleep_forever()

    assert sorted(r.message.key for r in receipts) == [0, 1, 2]
    for receipt in receipts:
        assert_not_sent(receipt, aiosms.ClosedError)
    assert fake.received["send"] == 0


async def test_a_send_all_after_an_account_level_stop_fails_every_message_unsent() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER, password="wrong") as sms,
        Batcher(sms, max_batch_size=5, linger=0.01) as b,
    ):
        with anyio.fail_after(5), pytest.raises(aiosms.AuthenticationError):
            await b.send(numbered(0))

        async def later() -> AsyncIterator[Message]:
            for i in range(1, 8):
                yield numbered(i)

        with anyio.fail_after(5):
            receipts = [r async for r in b.send_all(later())]

    assert sorted(r.message.key for r in receipts) == list(range(1, 8))
    for receipt in receipts:
        assert_not_sent(receipt, aiosms.AuthenticationError)
    assert fake.received["send"] == 1


async def test_a_batcher_cancelled_during_before_send_sends_nothing_of_the_packet() -> None:
    fake = FakeMySms(balance=PLENTY)
    asked = anyio.Event()
    receipts: list[Receipt] = []

    async def slow(messages: Sequence[Message]) -> list[bool]:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def consume(b: Batcher) -> None:
        async for receipt in b.send_all(numbered(i) for i in range(4)):
            receipts.append(receipt)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                async with Batcher(sms, max_batch_size=4, linger=60, before_send=slow) as b:
                    outer.start_soon(consume, b)
                    await asked.wait()
                    batcher_scope.cancel()
                    await anyio.sleep_forever()

    assert sorted(r.message.key for r in receipts) == [0, 1, 2, 3]
    for receipt in receipts:
        assert_not_sent(receipt, aiosms.ClosedError)
    assert fake.received["send"] == 0


async def test_a_batcher_cancelled_during_after_send_still_delivers_what_was_sent() -> None:
    fake = FakeMySms(balance=PLENTY)
    recording = anyio.Event()
    receipts: list[Receipt] = []

    async def slow(sent: Sequence[Receipt]) -> None:
        recording.set()
        await anyio.sleep_forever()

    async def consume(b: Batcher) -> None:
        async for receipt in b.send_all(numbered(i) for i in range(4)):
            receipts.append(receipt)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                async with Batcher(sms, max_batch_size=4, linger=60, after_send=slow) as b:
                    outer.start_soon(consume, b)
                    await recording.wait()
                    batcher_scope.cancel()
                    await anyio.sleep_forever()

    # The request had returned: the messages were sent, and their callers hear so.
    assert sorted(r.message.key for r in receipts) == [0, 1, 2, 3]
    assert all(r.state is DeliveryState.QUEUED for r in receipts)
    assert {r.message_id for r in receipts} == {entry.id for entry in fake.ledger}
    assert len(fake.ledger) == 4


async def test_an_unexpected_error_from_the_client_makes_its_packet_unknown_and_not_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug below the Batcher (not an SmsError) after the request may have left:
    # each message of that packet is an unknown outcome, never resent, and the
    # Batcher keeps sending the others.
    fake = FakeMySms(balance=PLENTY)
    async with fake.client(sender=SENDER) as sms:
        real = sms._send_packet
        calls = 0

        async def buggy(messages: Sequence[Message], wires: Sequence[object]) -> list[Receipt]:
            nonlocal calls
            calls += 1
            receipts = await real(messages, wires)
            if calls == 1:
                raise KeyError("a bug after the request went")
            return receipts

        monkeypatch.setattr(sms, "_send_packet", buggy)
        async with Batcher(sms, max_batch_size=3, linger=0.01, max_concurrency=1) as b:
            with anyio.fail_after(5):
                receipts = [r async for r in b.send_all(numbered(i) for i in range(6))]

    by_key = {r.message.key: r for r in receipts}
    assert sorted(by_key) == list(range(6))
    for key in range(3):
        error = by_key[key].error
        assert by_key[key].state is DeliveryState.UNKNOWN
        assert isinstance(error, aiosms.DeliveryUnknownError)
        assert error.may_have_been_sent
    assert all(by_key[key].ok for key in range(3, 6))
    # Sent once each: the unknown packet was not sent again.
    assert len(fake.ledger) == 6
    assert fake.received["send"] == 2
