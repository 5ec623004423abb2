"""A campaign of rows keeps going past bad rows: ``send_all(rows, make=...)``.

Expected values come from the rules (DESIGN.md "Validation before the wire" and the
phone rules of tests/test_validation.py) and from counting the rows by hand: every
row gets exactly one receipt, a bad row a REJECTED one carrying its key, and the
fake's ledger holds exactly the good rows.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message, Receipt
from aiosms.testing import FakeMySms, FakeThousandSms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
PLENTY = Decimal(10**9)


def good_phone(i: int) -> str:
    return f"7911{i:07d}"


def message_of(row: dict[str, Any]) -> Message:
    return Message(to=row["phone"], text=row["text"], key=row["id"])


async def receipts_by_key(stream: AsyncIterator[Receipt]) -> dict[Any, Receipt]:
    by_key: dict[Any, Receipt] = {}
    async for receipt in stream:
        key = receipt.message.key
        assert key not in by_key, f"two receipts for row {key}"
        by_key[key] = receipt
    return by_key


# Bad rows of each kind the rules refuse, with the field each must be refused on.
BAD_ROWS = {
    "twelve-digit-7": ("791122233334", "Sale", "to"),
    "moscow-without-7": ("4951234567", "Sale", "to"),
    "double-zero": ("0079112223333", "Sale", "to"),
    "extra-digit": ("+7 (495) 123-45-67-8", "Sale", "to"),
    "empty-number": ("", "Sale", "to"),
    "letters": ("call me", "Sale", "to"),
    "empty-text": ("79112223333", "   ", "text"),
}


async def test_one_bad_row_among_a_thousand_is_rejected_and_every_other_row_is_sent() -> None:
    fake = FakeMySms(balance=PLENTY)
    rows = [{"id": i, "phone": good_phone(i), "text": "Sale"} for i in range(1000)]
    rows[500]["phone"] = "791122233334"
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, max_batch_size=100, linger=0.01) as batcher,
    ):
        by_key = await receipts_by_key(batcher.send_all(rows, make=message_of))
    assert sorted(by_key) == list(range(1000))
    bad = by_key[500]
    assert bad.state is DeliveryState.REJECTED
    assert isinstance(bad.error, aiosms.ValidationError)
    assert bad.error.field == "to"
    assert bad.error.key == 500
    assert bad.message_id is None
    assert not bad.error.may_have_been_sent
    assert all(r.state is DeliveryState.QUEUED for k, r in by_key.items() if k != 500)
    assert sorted(e.phone for e in fake.ledger) == sorted(
        good_phone(i) for i in range(1000) if i != 500
    )


async def test_every_kind_of_bad_row_is_rejected_on_its_field_with_its_key() -> None:
    fake = FakeMySms(balance=PLENTY)
    rows: list[dict[str, Any]] = []
    for i in range(60):
        rows.append({"id": i, "phone": good_phone(i), "text": "Sale"})
        if i % 10 == 0:
            for name, (phone, text, _) in BAD_ROWS.items():
                rows.append({"id": f"{name}-{i}", "phone": phone, "text": text})
    async with (
        fake.client(sender=SENDER) as sms,
        # Room for only a few rows at once: bad rows take their turn like the others.
        Batcher(sms, max_batch_size=7, linger=0.01, max_pending=5) as batcher,
    ):
        by_key = await receipts_by_key(batcher.send_all(iter(rows), make=message_of))
    assert len(by_key) == 60 + 6 * len(BAD_ROWS)
    for name, (_, _, field) in BAD_ROWS.items():
        for i in range(0, 60, 10):
            receipt = by_key[f"{name}-{i}"]
            assert receipt.state is DeliveryState.REJECTED, name
            assert isinstance(receipt.error, aiosms.ValidationError)
            assert (receipt.error.field, receipt.error.key) == (field, f"{name}-{i}")
    assert sorted(e.phone for e in fake.ledger) == [good_phone(i) for i in range(60)]


async def test_rows_from_an_async_source_are_made_and_bad_ones_rejected() -> None:
    fake = FakeThousandSms()

    async def rows() -> AsyncIterator[tuple[int, str]]:
        for i in range(6):
            yield i, ("4951234567" if i == 3 else f"7916000000{i}")

    async with (
        fake.client(sender="sms-tester") as sms,
        Batcher(sms, linger=0.01) as batcher,
    ):
        by_key = await receipts_by_key(
            batcher.send_all(rows(), make=lambda row: Message(to=row[1], text="Hi", key=row[0]))
        )
    assert by_key[3].state is DeliveryState.REJECTED
    assert isinstance(by_key[3].error, aiosms.ValidationError)
    assert "country code" in by_key[3].error.rule
    assert sorted(e.phone for e in fake.ledger) == [f"7916000000{i}" for i in (0, 1, 2, 4, 5)]


async def test_a_row_refused_by_make_itself_is_rejected_with_the_key_it_names() -> None:
    fake = FakeMySms(balance=PLENTY)

    def make(row: tuple[str, str]) -> Message:
        key, phone = row
        if key == "stop-listed":
            raise aiosms.ValidationError("to", "is on our own stop list", key=key)
        return Message(to=phone, text="Hi", key=key)

    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0.01) as batcher:
        by_key = await receipts_by_key(
            batcher.send_all([("a", good_phone(1)), ("stop-listed", good_phone(2))], make=make)
        )
    refused = by_key["stop-listed"]
    assert refused.state is DeliveryState.REJECTED
    assert isinstance(refused.error, aiosms.ValidationError)
    assert refused.error.rule == "is on our own stop list"
    assert refused.message.key == "stop-listed"
    assert [e.phone for e in fake.ledger] == [good_phone(1)]


async def test_any_other_error_from_make_ends_the_stream_with_it() -> None:
    fake = FakeMySms(balance=PLENTY)
    rows: list[dict[str, Any]] = [
        {"id": 0, "phone": good_phone(0), "text": "Hi"},
        {"id": 1, "phone": good_phone(1)},  # no text: a bug in the caller's data or code
    ]
    seen: list[Any] = []

    async def consume(batcher: Batcher) -> None:
        async for receipt in batcher.send_all(rows, make=message_of):
            seen.append(receipt.message.key)

    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0.01) as batcher:
        with pytest.raises(KeyError, match="text"):
            await consume(batcher)
    assert seen == [0]
    assert [e.phone for e in fake.ledger] == [good_phone(0)]


async def test_a_coroutine_function_is_refused_as_make() -> None:
    async def make(row: str) -> Message:
        return Message(to=row, text="Hi")

    async with (
        FakeMySms().client(sender=SENDER) as sms,
        Batcher(sms) as batcher,
    ):
        with pytest.raises(aiosms.ValidationError) as caught:
            async for _ in batcher.send_all([good_phone(1)], make=make):  # type: ignore[arg-type]
                pass
    assert caught.value.field == "make"


async def test_a_rejected_rows_message_can_never_be_sent_by_any_way() -> None:
    fake = FakeMySms(balance=PLENTY)
    rows = [{"id": "row-9", "phone": "0079112223333", "text": "Code 1234"}]
    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0.01) as batcher:
        (receipt,) = [r async for r in batcher.send_all(rows, make=message_of)]
        unsendable = receipt.message
        for attempt in (sms.send, batcher.send):
            with pytest.raises(aiosms.ValidationError) as caught:
                await attempt(unsendable)
            assert (caught.value.field, caught.value.key) == ("to", "row-9")
        with pytest.raises(aiosms.ValidationError):
            await sms.send_many([unsendable])
        (again,) = [r async for r in batcher.send_all([unsendable])]
    assert again.state is DeliveryState.REJECTED
    assert isinstance(again.error, aiosms.ValidationError)
    assert again.error.key == "row-9"
    assert fake.ledger == []
    assert fake.calls == []


async def test_a_rejected_rows_message_corrected_with_evolve_is_an_ordinary_message() -> None:
    fake = FakeMySms(balance=PLENTY)
    rows = [{"id": 7, "phone": "4951234567", "text": "Hi"}]
    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0.01) as batcher:
        (receipt,) = [r async for r in batcher.send_all(rows, make=message_of)]
        fixed = attrs.evolve(receipt.message, to="7" + receipt.message.to)
        assert type(fixed) is Message
        sent = await batcher.send(fixed)
    assert sent.state is DeliveryState.QUEUED
    assert [(e.phone, e.text) for e in fake.ledger] == [("74951234567", "Hi")]


async def test_a_gateway_rule_refusal_in_send_all_names_the_messages_key() -> None:
    fake = FakeMySms(balance=PLENTY)
    long_sender = Message(to=good_phone(1), text="Hi", sender="FarTooLongSender", key="k-1")
    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0.01) as batcher:
        (receipt,) = [r async for r in batcher.send_all([long_sender])]
    assert receipt.state is DeliveryState.REJECTED
    assert isinstance(receipt.error, aiosms.ValidationError)
    assert (receipt.error.field, receipt.error.key) == ("sender", "k-1")
    assert "k-1" in str(receipt.error)


# -- the error and the held message, without a Batcher --------------------------------


def test_a_validation_error_from_a_message_names_its_key() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Message(to="791122233334", text="Hi", key="order-1234")
    assert caught.value.key == "order-1234"
    assert "order-1234" in str(caught.value)
    assert str(caught.value).startswith("to: ")


def test_a_validation_error_without_a_key_has_key_none_and_the_plain_message() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Message(to="12", text="Hi")
    assert caught.value.key is None
    assert str(caught.value) == f"to: {caught.value.rule}"


def test_the_held_message_of_a_bad_row_masks_its_number_and_text() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Message(to="791122233334", text="Your code: 9876", key=5)
    held = caught.value._message
    assert held is not None
    shown = repr(held)
    assert "791122233334" not in shown
    assert "9876" not in shown
    assert "7911******34" in shown
    assert "key=5" in shown


def test_the_held_message_masks_a_number_given_as_an_int_too() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Message(to=79112223333, text="Hi", key=5)  # type: ignore[arg-type]
    shown = repr(caught.value._message)
    assert "79112223333" not in shown
    assert "7911*****33" in shown


async def test_a_rejected_rows_error_survives_pickling_with_its_key_and_message() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Message(to="0079112223333", text="Hi", key=("batch", 3))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.field, copy.key, str(copy)) == ("to", ("batch", 3), str(caught.value))
    assert copy._message is not None
    assert copy._message.key == ("batch", 3)
    fake = FakeMySms()
    async with fake.client(sender=SENDER) as sms:
        with pytest.raises(aiosms.ValidationError):
            await sms.send(copy._message)
    assert fake.calls == []
