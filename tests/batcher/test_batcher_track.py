"""Batcher.track: polling sent messages' states in batches until final or a deadline.

The fakes move a message one step on each time its status is asked: my-sms
2 (QUEUED) → 3 (SENT) → 4 (DELIVERED); 1000sms 4 (QUEUED) → 8 (SENT) → 1
(DELIVERED), or 2 (UNDELIVERED) for a number set as undeliverable.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import anyio
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message, Receipt, StatusReport
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
QUEUED, SENT, DELIVERED = DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DELIVERED


def phone(i: int) -> str:
    return f"7911{i:07d}"


def numbered(i: int) -> Message:
    return Message(to=phone(i), text=f"message {i}", key=i)


async def send_all(b: Batcher, messages: list[Message]) -> list[Receipt]:
    with anyio.fail_after(5):
        return [receipt async for receipt in b.send_all(messages)]


def states_by_id(reports: list[StatusReport]) -> dict[str, list[DeliveryState]]:
    states: dict[str, list[DeliveryState]] = defaultdict(list)
    for report in reports:
        states[report.message_id].append(report.state)
    return dict(states)


async def test_tracking_receipts_yields_each_change_until_every_message_is_final() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        receipts = await send_all(b, [numbered(i) for i in range(3)])
        with anyio.fail_after(5):
            reports = [r async for r in b.track(receipts, interval=0.01, max_interval=0.02)]
    ids = {r.message_id for r in receipts}
    # The receipts already said QUEUED: only the changes after it are news.
    assert states_by_id(reports) == {i: [SENT, DELIVERED] for i in ids}
    assert all(r.error is None for r in reports)
    # Three polls, each one status packet for all three messages.
    assert [call.messages for call in fake.calls_to("status")] == [3, 3, 3]


async def test_tracking_ids_yields_queued_then_sent_then_delivered() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        receipts = await send_all(b, [numbered(i) for i in range(2)])
        ids = [r.message_id or "" for r in receipts]
        with anyio.fail_after(5):
            reports = [r async for r in b.track(ids, interval=0.01, max_interval=0.02)]
    assert states_by_id(reports) == {i: [QUEUED, SENT, DELIVERED] for i in ids}
    assert reports[-1].state.is_final


async def test_a_receipt_without_an_id_is_reported_at_once_with_an_error() -> None:
    fake = FakeMySms()
    fake.reject_number(phone(1))
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        good, refused = await send_all(b, [numbered(0), numbered(1)])
        assert refused.message_id is None
        never_answered = Receipt(numbered(2), None, QUEUED)
        reports: list[StatusReport] = []
        polls_when_reported: list[int] = []
        with anyio.fail_after(5):
            async for report in b.track(
                [refused, never_answered, good], interval=0.01, max_interval=0.02
            ):
                reports.append(report)
                polls_when_reported.append(fake.received["status"])

    first, second, *rest = reports
    # Both came before any status request.
    assert polls_when_reported[:2] == [0, 0]
    assert first.state is DeliveryState.REJECTED
    assert isinstance(first.error, aiosms.RecipientError)
    assert second.error is not None
    assert [r.message_id for r in rest] == [good.message_id] * 2
    assert [r.state for r in rest] == [SENT, DELIVERED]


async def test_the_deadline_stops_tracking_even_while_a_poll_hangs() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        receipts = await send_all(b, [numbered(0)])
        fake.faults.add(Fault.stall(30), endpoint="status")
        started = anyio.current_time()
        with anyio.fail_after(5):
            reports = [r async for r in b.track(receipts, interval=0.01, deadline=0.3)]
        took = anyio.current_time() - started
    assert reports == []
    assert fake.received["status"] == 1
    assert 0.25 <= took < 2


class NeverDelivers(FakeMySms):
    """A my-sms whose operator never confirms delivery: messages stay SENT."""

    def _check(self, item: dict[str, Any]) -> dict[str, str]:
        reply = super()._check(item)
        entry = self.messages.get(str(item.get("id") or ""))
        if entry is not None and entry.state == 4:
            entry.state = 3
        return reply


async def test_the_deadline_stops_tracking_messages_that_never_become_final() -> None:
    fake = NeverDelivers()
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=10, linger=0.01) as b,
    ):
        receipts = await send_all(b, [numbered(0)])
        started = anyio.current_time()
        with anyio.fail_after(5):
            reports = [
                r async for r in b.track(receipts, interval=0.01, max_interval=0.02, deadline=0.3)
            ]
        took = anyio.current_time() - started
    assert [r.state for r in reports] == [SENT]
    assert 0.25 <= took < 2
    # It kept polling until the deadline (at most 0.02 s apart), then stopped.
    assert fake.received["status"] >= 5


async def test_tracking_1000sms_receipts_ends_in_delivered_or_undelivered() -> None:
    fake = FakeThousandSms(balance=Decimal(1000), undeliverable_numbers={phone(3)})
    async with (
        fake.client(sender="sms-tester") as sms,
        Batcher(sms, max_concurrency=4) as b,
    ):
        receipts = await send_all(b, [numbered(i) for i in range(5)])
        with anyio.fail_after(5):
            reports = [r async for r in b.track(receipts, interval=0.01, max_interval=0.02)]
    final = {r.message_id: r.state for r in reports if r.state.is_final}
    by_key = {r.message.key: r.message_id for r in receipts}
    assert final == {
        by_key[i]: DeliveryState.UNDELIVERED if i == 3 else DELIVERED for i in range(5)
    }
    assert states_by_id(reports)[by_key[0] or ""] == [SENT, DELIVERED]


async def test_tracking_a_bad_id_fails_at_once(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client() as sms, aiosms.Batcher(sms) as batcher:
        with anyio.fail_after(2), pytest.raises(aiosms.ValidationError):
            async for _ in batcher.track([""], interval=0.01):
                pass


async def test_tracking_stops_on_a_refusal_that_would_repeat() -> None:
    fake = FakeMySms(password="other-password")
    async with fake.client(password="test-password") as sms, aiosms.Batcher(sms) as batcher:
        with anyio.fail_after(2), pytest.raises(aiosms.AuthenticationError):
            async for _ in batcher.track(["abc"], interval=0.01):
                pass
