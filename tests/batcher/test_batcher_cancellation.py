"""The Batcher under cancellation: of one caller, of a send_all consumer, of the Batcher.

The rule (DESIGN.md): cancelling a caller before its message is in a sealed packet
withdraws the message; after that the message goes out and only the waiting stops,
and its receipt reaches ``on_receipt``. Breaking out of ``send_all`` withdraws what
is queued. A cancelled Batcher makes messages in flight unknown outcomes and fails
queued ones as not sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from decimal import Decimal

import anyio
import pytest
from support import msg

import aiosms
from aiosms import Batcher, DeliveryState, Message, Receipt
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
PLENTY = Decimal(10**9)


def phone(i: int) -> str:
    return f"7911{i:07d}"


def numbered(i: int) -> Message:
    return Message(to=phone(i), text=f"message {i}", key=i)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)


def keys(receipts: list[Receipt]) -> list[int]:
    return sorted(int(r.message.key) for r in receipts)


# -- one caller ----------------------------------------------------------------------


async def test_a_send_cancelled_before_its_packet_is_sealed_is_never_sent() -> None:
    fake = FakeMySms()
    orphans: list[Receipt] = []
    async with (
        fake.client(sender=SENDER) as sms,
        # max_pending=1: the survivor below gets in only if the withdrawn message
        # gave its place back.
        Batcher(sms, max_batch_size=100, linger=60, max_pending=1, on_receipt=orphans.append) as b,
    ):
        caller = anyio.CancelScope()

        async def doomed() -> None:
            with caller:
                await b.send(numbered(1))

        survivor: list[Receipt] = []

        async def send_survivor() -> None:
            survivor.append(await b.send(numbered(2)))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(doomed)
                await anyio.wait_all_tasks_blocked()
                caller.cancel()
            assert caller.cancelled_caught
            async with anyio.create_task_group() as tg:
                tg.start_soon(send_survivor)
                await anyio.wait_all_tasks_blocked()
                await b.flush()

    (entry,) = fake.ledger
    assert entry.phone == phone(2)
    assert [call.messages for call in fake.calls_to("send")] == [1]
    assert survivor[0].message_id == entry.id
    assert orphans == []


async def test_a_send_cancelled_after_its_packet_left_is_sent_and_reported_to_on_receipt() -> None:
    fake = FakeMySms(latency=0.2)
    orphans: list[Receipt] = []
    message = numbered(1)
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=100, linger=0.01, on_receipt=orphans.append) as b,
    ):
        caller = anyio.CancelScope()

        async def impatient() -> None:
            with caller:
                await b.send(message)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(impatient)
                await wait_until(lambda: fake.in_flight == 1)
                caller.cancel()
        assert caller.cancelled_caught
    # Leaving the context waited for the packet in flight.
    (entry,) = fake.ledger
    assert entry.phone == message.to
    (receipt,) = orphans
    assert receipt.message is message
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED


async def test_without_on_receipt_an_orphaned_receipt_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMySms(latency=0.2)
    caplog.set_level("INFO", logger="aiosms.batcher")
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=100, linger=0.01) as b,
    ):
        caller = anyio.CancelScope()

        async def impatient() -> None:
            with caller:
                await b.send(numbered(1))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(impatient)
                await wait_until(lambda: fake.in_flight == 1)
                caller.cancel()
    (entry,) = fake.ledger
    (record,) = [r for r in caplog.records if r.name == "aiosms.batcher"]
    assert entry.id in record.getMessage()
    # The number is masked in the log.
    assert phone(1) not in record.getMessage()


# -- send_all consumers --------------------------------------------------------------


async def test_breaking_out_of_send_all_withdraws_the_queue_and_reports_what_was_sent() -> None:
    fake = FakeMySms(balance=PLENTY, latency=0.05)
    orphans: list[Receipt] = []
    consumed: list[Receipt] = []
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(
            sms,
            max_batch_size=10,
            linger=0.01,
            max_concurrency=2,
            max_pending=100,
            on_receipt=orphans.append,
        ) as b,
    ):
        with anyio.fail_after(5):
            async with aclosing(b.send_all(numbered(i) for i in range(1000))) as stream:
                async for receipt in stream:
                    consumed.append(receipt)
                    if len(consumed) == 15:
                        break
        requests_at_break = fake.received["send"]
        # Six latencies: time enough for queued packets to go, had they not been
        # withdrawn. No request starts after the consumer left.
        await anyio.sleep(0.3)
        assert fake.received["send"] == requests_at_break

    assert len(consumed) == 15
    # Far fewer than the source held were sent: what was queued was withdrawn.
    assert len(fake.ledger) < 100
    # Every message that reached the gateway has its receipt with someone:
    # the consumer, or on_receipt.
    ledger = {entry.id: entry.phone for entry in fake.ledger}
    reported = {r.message_id: r.message.to for r in [*consumed, *orphans]}
    assert reported == ledger
    assert all(r.state is DeliveryState.QUEUED for r in [*consumed, *orphans])
    # At least the rest of the packet that held the 15th receipt went to on_receipt.
    assert len(orphans) >= 5
    assert len(set(keys(consumed)) | set(keys(orphans))) == len(consumed) + len(orphans)


async def test_a_send_all_still_reading_when_the_batcher_closes_ends_with_closed_error() -> None:
    fake = FakeMySms(balance=PLENTY)
    consumed: list[Receipt] = []
    outcome: list[aiosms.ClosedError] = []
    enough = anyio.Event()

    async def stream(b: Batcher) -> None:
        try:
            async for receipt in b.send_all(numbered(i) for i in range(10_000)):
                consumed.append(receipt)
                if len(consumed) == 20:
                    enough.set()
                    # A slow consumer: the Batcher closes while the source is unread.
                    await anyio.sleep(0.2)
        except aiosms.ClosedError as error:
            outcome.append(error)

    with anyio.fail_after(5):
        async with (
            anyio.create_task_group() as outer,
            fake.client(sender=SENDER) as sms,
            Batcher(sms, max_batch_size=10, linger=0.01, max_pending=50) as b,
        ):
            outer.start_soon(stream, b)
            await enough.wait()

    # The consumer got a receipt for everything that was sent, then learned that
    # the rest of its source was never sent.
    (error,) = outcome
    assert not error.may_have_been_sent
    sent = [r for r in consumed if r.state is DeliveryState.QUEUED]
    assert len(sent) == len(fake.ledger)
    assert 20 <= len(consumed) < 10_000
    # A message taken in just as the Batcher closed has its own receipt: not sent.
    for receipt in consumed:
        if receipt.state is not DeliveryState.QUEUED:
            assert isinstance(receipt.error, aiosms.ClosedError)
            assert receipt.state is DeliveryState.REJECTED


async def test_two_streams_waiting_for_room_both_end_when_the_batcher_closes() -> None:
    fake = FakeMySms(balance=PLENTY, latency=0.05)
    counts = [0, 0]
    ended: list[int] = []

    unsent: list[Receipt] = []

    async def stream(b: Batcher, number: int) -> None:
        try:
            async for receipt in b.send_all(numbered(i) for i in range(1000)):
                if receipt.state is DeliveryState.REJECTED:
                    # Taken in just as the Batcher closed: never sent.
                    unsent.append(receipt)
                else:
                    counts[number] += 1
        except aiosms.ClosedError:
            pass
        ended.append(number)

    with anyio.fail_after(5):
        async with (
            anyio.create_task_group() as outer,
            fake.client(sender=SENDER) as sms,
            Batcher(sms, max_batch_size=5, linger=0.01, max_concurrency=2, max_pending=10) as b,
        ):
            outer.start_soon(stream, b, 0)
            outer.start_soon(stream, b, 1)
            await wait_until(lambda: sum(counts) >= 20)
    assert sorted(ended) == [0, 1]
    assert sum(counts) == len(fake.ledger)
    assert all(isinstance(r.error, aiosms.ClosedError) for r in unsent)


# -- the Batcher itself --------------------------------------------------------------


async def test_a_cancelled_batcher_makes_packets_in_flight_unknown_and_the_rest_unsent() -> None:
    # The fake answers only after 5 s: both packets in flight are cut off.
    fake = FakeMySms(balance=PLENTY, latency=5.0)
    receipts: list[Receipt] = []
    source_read = anyio.Event()

    async def source() -> AsyncIterator[Message]:
        for i in range(100):
            yield numbered(i)
        source_read.set()

    async def consume(b: Batcher) -> None:
        async for receipt in b.send_all(source()):
            receipts.append(receipt)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                async with Batcher(
                    sms, max_batch_size=10, linger=60, max_concurrency=2, max_pending=100
                ) as b:
                    outer.start_soon(consume, b)
                    await source_read.wait()
                    await wait_until(lambda: fake.in_flight == 2)
                    batcher_scope.cancel()
                    await anyio.sleep_forever()

    assert sorted(r.message.key for r in receipts) == list(range(100))
    unknown = [r for r in receipts if r.state is DeliveryState.UNKNOWN]
    not_sent = [r for r in receipts if r.state is DeliveryState.REJECTED]
    # Two packets of ten were in flight.
    assert len(unknown) == 20
    assert len(not_sent) == 80
    for receipt in unknown:
        assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
        assert receipt.error.may_have_been_sent
    for receipt in not_sent:
        assert isinstance(receipt.error, aiosms.SmsError)
        assert not receipt.error.may_have_been_sent
    assert fake.received["send"] == 2


async def test_a_cancelled_batcher_reports_cancelled_senders_messages_to_on_receipt() -> None:
    fake = FakeMySms(balance=PLENTY, latency=5.0)
    orphans: list[Receipt] = []
    with anyio.fail_after(5):
        async with fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                async with (
                    Batcher(
                        sms,
                        max_batch_size=5,
                        linger=60,
                        max_concurrency=2,
                        on_receipt=orphans.append,
                    ) as b,
                    anyio.create_task_group() as tg,
                ):
                    for i in range(20):
                        tg.start_soon(b.send, numbered(i))
                    await wait_until(lambda: fake.in_flight == 2)
                    batcher_scope.cancel()

    # Four sealed packets: two in flight (unknown), two queued (not sent).
    assert sorted(r.message.key for r in orphans) == list(range(20))
    unknown = [r for r in orphans if r.state is DeliveryState.UNKNOWN]
    queued = [r for r in orphans if r.state is DeliveryState.REJECTED]
    assert len(unknown) == 10
    assert len(queued) == 10
    assert all(isinstance(r.error, aiosms.DeliveryUnknownError) for r in unknown)
    assert all(r.error is not None and not r.error.may_have_been_sent for r in queued)


async def test_a_packet_waiting_for_rate_tokens_when_the_batcher_is_cancelled_is_not_sent() -> None:
    fake = FakeMySms(balance=PLENTY)
    receipts: list[Receipt] = []

    async def consume(b: Batcher) -> None:
        async for receipt in b.send_all(numbered(i) for i in range(20)):
            receipts.append(receipt)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            with anyio.CancelScope() as batcher_scope:
                # One message a second: after the first packet of 10, the next waits 10 s.
                async with Batcher(sms, max_batch_size=10, linger=0.01, rate=1) as b:
                    outer.start_soon(consume, b)
                    await wait_until(lambda: len(fake.ledger) == 10)
                    await anyio.sleep(0.05)
                    batcher_scope.cancel()

    assert sorted(r.message.key for r in receipts) == list(range(20))
    sent = [r for r in receipts if r.state is DeliveryState.QUEUED]
    waiting = [r for r in receipts if r.state is not DeliveryState.QUEUED]
    # Two packets of ten wait for tokens; workers race for them, so either may go first.
    assert sorted(r.message.key for r in sent) in (list(range(10)), list(range(10, 20)))
    # The other packet never left: certainly not sent.
    for receipt in waiting:
        assert receipt.state is DeliveryState.REJECTED
        assert receipt.error is not None
        assert not receipt.error.may_have_been_sent
    assert fake.received["send"] == 1


async def test_send_all_source_failure_reaches_its_consumer_and_the_batcher_lives_on() -> None:
    fake = FakeMySms()
    consumed: list[Receipt] = []

    def broken_source() -> Iterator[Message]:
        for i in range(5):
            yield numbered(i)
        raise LookupError("the source database went away")

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):

        async def consume() -> None:
            async for receipt in b.send_all(broken_source()):
                consumed.append(receipt)

        with anyio.fail_after(5), pytest.raises(LookupError):
            await consume()
        # The Batcher still works for others.
        with anyio.fail_after(5):
            after = await b.send(numbered(9))
    assert after.state is DeliveryState.QUEUED
    # What the source gave before failing was sent and reported.
    assert keys(consumed) == [0, 1, 2, 3, 4]
    assert len(fake.ledger) == 6


async def test_a_source_woken_as_the_batcher_closes_gets_a_receipt_and_a_closed_error() -> None:
    fake = FakeMySms()
    go = anyio.Event()
    got: list[str] = []

    async def source() -> AsyncIterator[Message]:
        yield msg("first")
        await go.wait()
        yield msg("second")

    async def consume(batcher: aiosms.Batcher) -> None:
        try:
            async for receipt in batcher.send_all(source()):
                got.append(receipt.state.value)
        except aiosms.ClosedError:
            got.append("closed")

    async with fake.client(sender="MyShop") as sms:
        with anyio.fail_after(5):
            async with (
                anyio.create_task_group() as outer,
                aiosms.Batcher(sms, max_batch_size=1, linger=0) as batcher,
            ):
                outer.start_soon(consume, batcher)
                while not got:
                    await anyio.sleep(0.01)
                go.set()
    assert got == ["queued", "rejected", "closed"]
    assert [e.text for e in fake.ledger] == ["first"]
