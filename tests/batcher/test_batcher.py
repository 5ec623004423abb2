"""The Batcher against the fake gateways: packets, linger, outcomes, stops and shutdown.

Expected values come from the Batcher's contract (DESIGN.md, "Semantics that
matter") or from hand computation: the fake my-sms charges 1.5 per single-part
message, so a balance of 15 pays for exactly ten; 1,000 messages in packets of 100
are ten packets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message, Receipt
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
PLENTY = Decimal(10**9)


def phone(i: int) -> str:
    return f"7911{i:07d}"


def numbered(i: int, **overrides: object) -> Message:
    fields: dict[str, object] = {"to": phone(i), "text": f"message {i}", "key": i}
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)


async def collect(stream: AsyncIterator[Receipt]) -> dict[int, Receipt]:
    """Receipts by key, failing if any key comes back twice."""
    by_key: dict[int, Receipt] = {}
    async for receipt in stream:
        key = receipt.message.key
        assert isinstance(key, int)
        assert key not in by_key, f"two receipts for message {key}"
        by_key[key] = receipt
    return by_key


# -- packets -------------------------------------------------------------------------


async def test_a_thousand_concurrent_senders_share_exactly_ten_full_packets() -> None:
    fake = FakeMySms(balance=PLENTY)
    messages = [numbered(i) for i in range(1000)]
    receipts: dict[object, Receipt] = {}
    async with (
        fake.client(sender=SENDER) as sms,
        # A long linger: only fullness may send a packet.
        Batcher(sms, max_batch_size=100, linger=60, max_concurrency=4, max_pending=1000) as b,
    ):

        async def send_one(message: Message) -> None:
            receipts[message.key] = await b.send(message)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for message in messages:
                    tg.start_soon(send_one, message)

    assert [call.messages for call in fake.calls_to("send")] == [100] * 10
    ledger = {entry.id: entry for entry in fake.ledger}
    assert len(ledger) == 1000
    for message in messages:
        receipt = receipts[message.key]
        assert receipt.message is message
        assert receipt.state is DeliveryState.QUEUED
        assert receipt.message_id is not None
        entry = ledger[receipt.message_id]
        assert (entry.phone, entry.text, entry.sender) == (message.to, message.text, SENDER)
    assert len({r.message_id for r in receipts.values()}) == 1000


async def test_linger_sends_a_lone_message_without_flush_or_exit() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=1000, linger=0.05, max_concurrency=2) as b,
    ):
        started = anyio.current_time()
        with anyio.fail_after(5):
            receipt = await b.send(numbered(1))
        waited = anyio.current_time() - started
        # Still inside the context: the packet went because its linger ran out.
        (entry,) = fake.ledger
        assert receipt.message_id == entry.id
        assert [call.messages for call in fake.calls_to("send")] == [1]
    # It waited for company first (allowing for a coarse clock).
    assert waited >= 0.04


async def test_linger_counts_from_the_first_message_of_a_packet() -> None:
    fake = FakeMySms()
    waited: dict[int, float] = {}
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=1000, linger=0.3) as b,
    ):

        async def send_one(i: int) -> None:
            started = anyio.current_time()
            await b.send(numbered(i))
            waited[i] = anyio.current_time() - started

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send_one, 1)
                await anyio.sleep(0.15)
                tg.start_soon(send_one, 2)
    # One packet for both, sent 0.3 s after the first arrived: the second waited
    # about 0.15 s, not a linger of its own.
    assert [call.messages for call in fake.calls_to("send")] == [2]
    assert waited[2] < 0.28


async def test_flush_sends_the_open_packet_at_once() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=100, linger=60) as b,
    ):
        receipts: list[Receipt] = []

        async def send_one(i: int) -> None:
            receipts.append(await b.send(numbered(i)))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(send_one, i)
                await anyio.wait_all_tasks_blocked()
                assert fake.calls_to("send") == []
                await b.flush()
        assert [call.messages for call in fake.calls_to("send")] == [3]
        assert len(receipts) == 3


async def test_1000sms_sends_one_request_per_message_whatever_max_batch_size_says() -> None:
    fake = FakeThousandSms()
    async with (
        fake.client(sender="sms-tester") as sms,
        Batcher(sms, max_batch_size=100, linger=60, max_concurrency=3) as b,
    ):
        with anyio.fail_after(5):
            receipts = await collect(b.send_all(numbered(i) for i in range(7)))
    assert [call.messages for call in fake.calls_to("push_msg")] == [1] * 7
    assert {r.state for r in receipts.values()} == {DeliveryState.QUEUED}


# -- outcomes ------------------------------------------------------------------------


async def test_rejections_in_a_stream_fail_only_their_own_messages() -> None:
    fake = FakeMySms(balance=PLENTY)
    rejected = set(range(0, 300, 7))
    for i in rejected:
        fake.reject_number(phone(i))
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=50, linger=0.01, max_concurrency=3, max_pending=64) as b,
    ):
        with anyio.fail_after(10):
            receipts = await collect(b.send_all(numbered(i) for i in range(300)))

    assert set(receipts) == set(range(300))
    ledger = {entry.id: entry for entry in fake.ledger}
    assert len(ledger) == 300 - len(rejected)
    for key, receipt in receipts.items():
        if key in rejected:
            assert receipt.state is DeliveryState.REJECTED
            assert isinstance(receipt.error, aiosms.RecipientError)
            assert receipt.error.code == -12
            assert receipt.message_id is None
        else:
            assert receipt.state is DeliveryState.QUEUED
            assert receipt.error is None
            assert receipt.message_id is not None
            assert ledger[receipt.message_id].phone == phone(key)
            assert ledger[receipt.message_id].text == f"message {key}"
    states = Counter(r.state for r in receipts.values())
    assert states == {
        DeliveryState.REJECTED: len(rejected),
        DeliveryState.QUEUED: 300 - len(rejected),
    }


async def test_a_reply_of_the_wrong_length_makes_every_message_of_its_packet_unknown() -> None:
    fake = FakeMySms()
    fake.faults.add(Fault.wrong_count(), endpoint="send")
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=5, linger=60) as b,
    ):
        with anyio.fail_after(5):
            receipts = await collect(b.send_all(numbered(i) for i in range(5)))
    assert set(receipts) == set(range(5))
    for receipt in receipts.values():
        assert receipt.state is DeliveryState.UNKNOWN
        assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
        assert receipt.error.may_have_been_sent
        assert receipt.message_id is None
    # The fake did the work: these messages really may have gone out.
    assert len(fake.ledger) == 5
    # Nothing is resent.
    assert fake.received["send"] == 1


async def test_a_503_on_a_packet_gives_each_caller_its_own_unknown_outcome_error() -> None:
    fake = FakeMySms()
    fake.faults.add(Fault.http_status(503), endpoint="send")
    errors: dict[object, BaseException] = {}
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=3, linger=60) as b,
    ):

        async def send_one(i: int) -> None:
            try:
                await b.send(numbered(i))
            except aiosms.SmsError as error:
                errors[i] = error

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(send_one, i)
    assert set(errors) == {0, 1, 2}
    assert all(isinstance(e, aiosms.DeliveryUnknownError) for e in errors.values())
    assert all(getattr(e, "may_have_been_sent", False) for e in errors.values())
    assert len({id(e) for e in errors.values()}) == 3
    assert fake.received["send"] == 1
    assert fake.ledger == []


async def test_an_invalid_sender_fails_batcher_send_before_any_request() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        with pytest.raises(aiosms.ValidationError) as caught:
            await b.send(numbered(1, sender="A sender name far too long"))
        assert caught.value.field == "sender"
        assert not caught.value.may_have_been_sent
    assert sum(fake.received.values()) == 0


async def test_an_invalid_sender_in_send_all_is_a_rejected_receipt_and_the_rest_go() -> None:
    fake = FakeMySms()
    messages = [numbered(i) for i in range(5)]
    messages[2] = numbered(2, sender="A sender name far too long")
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        with anyio.fail_after(5):
            receipts = await collect(b.send_all(messages))
    assert set(receipts) == set(range(5))
    invalid = receipts[2]
    assert invalid.state is DeliveryState.REJECTED
    assert isinstance(invalid.error, aiosms.ValidationError)
    assert invalid.error.field == "sender"
    assert [receipts[i].state for i in (0, 1, 3, 4)] == [DeliveryState.QUEUED] * 4
    assert sorted(entry.phone for entry in fake.ledger) == [phone(i) for i in (0, 1, 3, 4)]


async def test_send_all_takes_an_async_iterable() -> None:
    fake = FakeMySms()

    async def source() -> AsyncIterator[Message]:
        for i in range(25):
            yield numbered(i)
            if i % 5 == 0:
                await anyio.lowlevel.checkpoint()

    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        with anyio.fail_after(5):
            receipts = await collect(b.send_all(source()))
    assert set(receipts) == set(range(25))
    assert len(fake.ledger) == 25


# -- concurrency ---------------------------------------------------------------------


async def test_my_sms_packets_in_flight_reach_but_never_exceed_max_concurrency() -> None:
    fake = FakeMySms(balance=PLENTY, latency=0.05)
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01, max_concurrency=4, max_pending=200) as b,
    ):
        with anyio.fail_after(10):
            receipts = await collect(b.send_all(numbered(i) for i in range(200)))
    assert len(receipts) == 200
    assert [call.messages for call in fake.calls_to("send")] == [10] * 20
    assert fake.peak_in_flight == 4


async def test_1000sms_requests_in_flight_reach_but_never_exceed_max_concurrency() -> None:
    fake = FakeThousandSms(balance=PLENTY, latency=0.02)
    async with (
        fake.client(sender="sms-tester") as sms,
        Batcher(sms, max_concurrency=5, max_pending=60) as b,
    ):
        with anyio.fail_after(10):
            receipts = await collect(b.send_all(numbered(i) for i in range(60)))
    assert len(receipts) == 60
    assert len(fake.calls_to("push_msg")) == 60
    assert fake.peak_in_flight == 5


async def test_1000sms_stream_gives_one_receipt_each_and_a_blacklisted_one_its_refusal() -> None:
    fake = FakeThousandSms(balance=PLENTY, blacklist={phone(7)}, latency=0.005)
    async with (
        fake.client(sender="sms-tester") as sms,
        Batcher(sms, max_concurrency=4, max_pending=16) as b,
    ):
        with anyio.fail_after(10):
            receipts = await collect(b.send_all(numbered(i) for i in range(50)))

    assert set(receipts) == set(range(50))
    refused = receipts[7]
    assert refused.state is DeliveryState.REJECTED
    assert isinstance(refused.error, aiosms.BlacklistedError)
    assert refused.error.code == 618
    assert not refused.error.may_have_been_sent
    ledger = {entry.id: entry for entry in fake.ledger}
    assert len(ledger) == 49
    for key, receipt in receipts.items():
        if key != 7:
            assert receipt.state is DeliveryState.QUEUED
            assert receipt.message_id is not None
            assert ledger[receipt.message_id].phone == phone(key)
    assert len(fake.calls_to("push_msg")) == 50
    assert 1 < fake.peak_in_flight <= 4


# -- account-level stops -------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_insufficient_funds_stops_the_flow_and_fails_the_rest_as_not_sent(
    concurrency: int,
) -> None:
    # 15 / 1.5 = exactly ten messages paid for: two packets of 5 go through, the
    # third to reach the gateway is refused with -13.
    fake = FakeMySms(balance=Decimal("15"), latency=0.01)
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=5, linger=0.01, max_concurrency=concurrency) as b,
    ):
        with anyio.fail_after(10):
            receipts = await collect(b.send_all(numbered(i) for i in range(50)))
        with pytest.raises(aiosms.InsufficientFundsError) as caught:
            await b.send(numbered(99))
        assert not caught.value.may_have_been_sent

    assert set(receipts) == set(range(50))
    accepted = {key for key, r in receipts.items() if r.state is DeliveryState.QUEUED}
    assert len(accepted) == 10
    assert {phone(key) for key in accepted} == {entry.phone for entry in fake.ledger}
    if concurrency == 1:
        # One packet at a time: the first ten, in order, were paid for.
        assert accepted == set(range(10))
    for key in set(range(50)) - accepted:
        receipt = receipts[key]
        assert receipt.state is DeliveryState.REJECTED, key
        assert isinstance(receipt.error, aiosms.InsufficientFundsError), key
        assert not receipt.error.may_have_been_sent, key
    # The refused packet is the third; besides it, only packets already in flight
    # when its reply came (at most concurrency - 1) may have reached the gateway.
    assert 3 <= fake.received["send"] <= 3 + (concurrency - 1)


async def test_an_authentication_failure_stops_the_flow_after_one_request() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER, password="wrong") as sms,
        Batcher(sms, max_batch_size=5, linger=0.01, max_concurrency=1) as b,
    ):
        with anyio.fail_after(5):
            receipts = await collect(b.send_all(numbered(i) for i in range(30)))
    assert set(receipts) == set(range(30))
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts.values())
    assert all(r.state is DeliveryState.REJECTED for r in receipts.values())
    assert fake.received["send"] == 1
    assert fake.ledger == []


# -- shutdown ------------------------------------------------------------------------


async def test_leaving_the_context_sends_what_is_queued_and_waits_for_it() -> None:
    fake = FakeMySms(latency=0.02)
    singles: dict[object, Receipt] = {}
    streamed: list[Receipt] = []
    source_read = anyio.Event()

    async def source() -> AsyncIterator[Message]:
        for i in range(100, 150):
            yield numbered(i)
        source_read.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer, fake.client(sender=SENDER) as sms:
            async with Batcher(sms, max_batch_size=20, linger=60, max_concurrency=2) as b:

                async def send_one(message: Message) -> None:
                    singles[message.key] = await b.send(message)

                async def stream() -> None:
                    async for receipt in b.send_all(source()):
                        streamed.append(receipt)

                for i in range(10):
                    outer.start_soon(send_one, numbered(i))
                outer.start_soon(stream)
                await source_read.wait()
                await anyio.wait_all_tasks_blocked()
            # Everything was sent by the time the context was left.
            assert fake.in_flight == 0
            assert len(fake.ledger) == 60

            with pytest.raises(aiosms.ClosedError) as caught:
                await b.send(numbered(999))
            assert not caught.value.may_have_been_sent
            with pytest.raises(aiosms.ClosedError):
                async for _ in b.send_all([numbered(998)]):
                    pass

    assert set(singles) == set(range(10))
    assert sorted(int(str(r.message.key)) for r in streamed) == list(range(100, 150))
    ledger = {entry.id: entry.phone for entry in fake.ledger}
    for receipt in [*singles.values(), *streamed]:
        assert receipt.state is DeliveryState.QUEUED
        assert receipt.message_id is not None
        assert ledger[receipt.message_id] == receipt.message.to


async def test_a_batcher_is_entered_only_once_and_only_used_inside() -> None:
    fake = FakeMySms()
    async with fake.client(sender=SENDER) as sms:
        b = Batcher(sms, max_batch_size=5, linger=0.01)
        with pytest.raises(RuntimeError):
            await b.send(numbered(1))
        async with b:
            with pytest.raises(RuntimeError):
                await b.__aenter__()
    assert fake.ledger == []


@pytest.mark.parametrize(
    "options",
    [
        {"max_batch_size": 0},
        {"max_pending": 0},
        {"max_concurrency": 0},
        {"linger": -1},
        {"rate": 0},
        {"max_batch_size": True},
    ],
)
async def test_bad_options_are_refused_when_the_batcher_is_built(
    options: dict[str, object],
) -> None:
    async with FakeMySms().client(sender=SENDER) as sms:
        with pytest.raises(aiosms.ValidationError):
            Batcher(sms, **options)  # type: ignore[arg-type]
