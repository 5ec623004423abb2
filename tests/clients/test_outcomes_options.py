"""Smaller outcome rules: an optional 1000sms sender, `max_parts`, orphans logged as warnings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message
from aiosms.testing import FakeMySms, FakeThousandSms

pytestmark = pytest.mark.anyio

# DESIGN.md: GSM-7 text takes 160 characters in one SMS, 153 per part when split;
# Cyrillic 70, and 67 per part.
THREE_PARTS_GSM = "a" * 307
TWO_PARTS_GSM = "a" * 306
THREE_PARTS_CYRILLIC = "Ж" * 135
TWO_PARTS_CYRILLIC = "Ж" * 134

Fake = FakeMySms | FakeThousandSms
FAKES: dict[str, Callable[[], Fake]] = {"my-sms": FakeMySms, "1000sms": FakeThousandSms}
SENDERS = {"my-sms": "MyShop", "1000sms": "sms-tester"}


def client(gateway: str, fake: Fake, **options: Any) -> aiosms.MySms | aiosms.ThousandSms:
    return fake.client(sender=SENDERS[gateway], **options)


def sent(fake: Fake) -> int:
    return len(fake.ledger)


# -- 1000sms sends without a sender ---------------------------------------------------------


@pytest.mark.parametrize("verb", ["POST", "GET"])
async def test_1000sms_sends_without_any_sender_under_the_accounts_default(verb: str) -> None:
    fake = FakeThousandSms(sender_name="AcmeShop")
    async with fake.client(method=verb) as sms:
        receipts = await sms.send_many([Message(to="79160000000", text=f"m{i}") for i in range(3)])
    assert {r.state for r in receipts} == {DeliveryState.QUEUED}
    assert [e.sender_name for e in fake.ledger] == ["AcmeShop"] * 3
    assert {r.sender for r in receipts} == {"AcmeShop"}


async def test_a_message_sender_still_overrides_the_default_on_a_client_without_one() -> None:
    fake = FakeThousandSms(sender_name="AcmeShop")
    async with fake.client() as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi", sender="Other"))
    assert fake.ledger[0].sender_name == "Other"
    assert receipt.sender == "Other"


async def test_my_sms_still_refuses_a_send_with_no_sender_anywhere() -> None:
    fake = FakeMySms()
    async with fake.client() as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to="79160000000", text="Hi"))
    assert caught.value.field == "sender"
    assert fake.calls == []


# -- max_parts ------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway", list(FAKES))
@pytest.mark.parametrize("text", [THREE_PARTS_GSM, THREE_PARTS_CYRILLIC], ids=["gsm", "ucs2"])
async def test_a_text_needing_more_parts_than_max_parts_is_refused_before_any_request(
    gateway: str, text: str
) -> None:
    fake = FAKES[gateway]()
    async with client(gateway, fake, max_parts=2) as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to="79160000000", text=text))
    assert caught.value.field == "text"
    assert "3" in caught.value.rule
    assert fake.calls == []


@pytest.mark.parametrize("gateway", list(FAKES))
async def test_a_text_of_exactly_max_parts_goes(gateway: str) -> None:
    fake = FAKES[gateway]()
    async with client(gateway, fake, max_parts=2) as sms:
        first = await sms.send(Message(to="79160000000", text=TWO_PARTS_GSM))
        second = await sms.send(Message(to="79160000000", text=TWO_PARTS_CYRILLIC))
    assert (first.parts, second.parts) == (2, 2)
    assert sent(fake) == 2


@pytest.mark.parametrize("gateway", list(FAKES))
async def test_without_max_parts_a_long_text_goes(gateway: str) -> None:
    fake = FAKES[gateway]()
    async with client(gateway, fake) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Ж" * 700))
    assert receipt.parts == 11
    assert sent(fake) == 1


@pytest.mark.parametrize("gateway", list(FAKES))
async def test_send_many_rejects_only_the_text_over_max_parts(gateway: str) -> None:
    fake = FAKES[gateway]()
    texts = ["short", THREE_PARTS_GSM, "also short"]
    async with client(gateway, fake, max_parts=2) as sms:
        receipts = await sms.send_many([Message(to="79160000000", text=t) for t in texts])
    assert [r.state for r in receipts] == [
        DeliveryState.QUEUED,
        DeliveryState.REJECTED,
        DeliveryState.QUEUED,
    ]
    assert isinstance(receipts[1].error, aiosms.ValidationError)
    assert receipts[1].error.field == "text"
    assert sent(fake) == 2


@pytest.mark.parametrize("gateway", list(FAKES))
async def test_a_batcher_refuses_a_text_over_max_parts_and_sends_the_rest(gateway: str) -> None:
    fake = FAKES[gateway]()
    async with client(gateway, fake, max_parts=1) as sms, Batcher(sms, linger=0.01) as batcher:
        with pytest.raises(aiosms.ValidationError):
            await batcher.send(Message(to="79160000000", text=TWO_PARTS_GSM))
        messages = [Message(to="79160000000", text=t, key=t) for t in ("a", TWO_PARTS_GSM)]
        with anyio.fail_after(5):
            receipts = {r.message.key: r async for r in batcher.send_all(messages)}
    assert receipts["a"].state is DeliveryState.QUEUED
    assert receipts[TWO_PARTS_GSM].state is DeliveryState.REJECTED
    assert sent(fake) == 1


@pytest.mark.parametrize("gateway", list(FAKES))
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"], ids=repr)
def test_a_max_parts_that_is_not_a_positive_int_is_refused(gateway: str, value: Any) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        client(gateway, FAKES[gateway](), max_parts=value)
    assert caught.value.field == "max_parts"


@pytest.mark.parametrize("gateway", list(FAKES))
def test_max_parts_defaults_to_no_limit(gateway: str) -> None:
    assert client(gateway, FAKES[gateway]()).max_parts is None


# -- orphaned receipts ----------------------------------------------------------------------


async def test_an_accepted_receipt_nobody_waits_for_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMySms(latency=0.2)
    caplog.set_level(logging.INFO, logger="aiosms.batcher")
    async with fake.client(sender="MyShop") as sms, Batcher(sms, linger=0.01) as batcher:
        caller = anyio.CancelScope()

        async def impatient() -> None:
            with caller:
                await batcher.send(Message(to="79160000000", text="Hi"))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(impatient)
                while fake.in_flight == 0:
                    await anyio.sleep(0.005)
                caller.cancel()
    (entry,) = fake.ledger
    (record,) = [r for r in caplog.records if r.name == "aiosms.batcher"]
    assert entry.id in record.getMessage()
    assert "state=queued" in record.getMessage()
    assert record.levelno == logging.WARNING
