"""ThousandSms against the fake 1000sms.ru gateway: every call, format and verb.

Expected values come from the 1000sms document (codes, states, field meanings) or
from hand computation (parts: 70 UCS-2 characters in one SMS, 67 per part when
split; the fake's price per part is 2.5 unless a test sets another).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

import aiosms
from aiosms import DeliveryState, Message
from aiosms.testing import CallRecord, FakeThousandSms

pytestmark = pytest.mark.anyio

WIRES = pytest.mark.parametrize(
    ("fmt", "verb"), [("json", "POST"), ("json", "GET"), ("xml", "POST"), ("xml", "GET")]
)
MOSCOW_OFFSET = timedelta(hours=3)


# -- send ---------------------------------------------------------------------------


@WIRES
async def test_send_returns_a_queued_receipt_with_the_gateways_id_parts_cost_and_sender(
    fake_thousandsms: FakeThousandSms, fmt: str, verb: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", format=fmt, method=verb) as sms:
        receipt = await sms.send(Message(to="+7 916 000-00-00", text="Hello", key="order-1"))
    (entry,) = fake_thousandsms.ledger
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.error is None
    assert receipt.ok
    assert receipt.parts == 1
    assert receipt.cost == Decimal("2.5")
    assert receipt.sender == "sms-tester"
    assert receipt.message.key == "order-1"
    assert (entry.phone, entry.text, entry.sender_name) == ("79160000000", "Hello", "sms-tester")
    assert fake_thousandsms.calls == [CallRecord("push_msg", verb, fmt, 1)]


async def test_a_150_character_cyrillic_text_is_three_parts_at_three_times_the_price(
    fake_thousandsms: FakeThousandSms,
) -> None:
    # 150 UCS-2 characters > 70, so parts of 67: ceil(150 / 67) = 3; 3 × 2.5 = 7.5.
    text = "Ж" * 150
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        receipt = await sms.send(Message(to="79160000000", text=text))
    assert receipt.parts == 3
    assert receipt.cost == Decimal("7.5")
    assert fake_thousandsms.balance == Decimal("992.5")


async def test_a_161_character_latin_text_is_two_parts(fake_thousandsms: FakeThousandSms) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        receipt = await sms.send(Message(to="79160000000", text="a" * 161))
    assert receipt.parts == 2
    assert receipt.cost == Decimal("5.0")


async def test_the_messages_own_sender_overrides_the_clients(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        first = await sms.send(Message(to="79160000000", text="Hi"))
        second = await sms.send(Message(to="79160000000", text="Hi", sender="MyShop"))
    assert [e.sender_name for e in fake_thousandsms.ledger] == ["sms-tester", "MyShop"]
    assert (first.sender, second.sender) == ("sms-tester", "MyShop")


@pytest.mark.parametrize(
    "sender",
    ["Магазин", "abc", "Shop123", "ABCDEFGHIJKL"],
    ids=["cyrillic", "three-characters", "three-digits", "twelve-characters"],
)
async def test_a_sender_that_breaks_the_gateways_rules_is_refused_before_the_wire(
    fake_thousandsms: FakeThousandSms, sender: str
) -> None:
    async with fake_thousandsms.client() as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to="79160000000", text="Hi", sender=sender))
    assert caught.value.field == "sender"
    assert fake_thousandsms.calls == []


async def test_a_send_with_no_sender_anywhere_goes_under_the_accounts_default_sender() -> None:
    fake = FakeThousandSms(sender_name="Default")
    async with fake.client() as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert [e.sender_name for e in fake.ledger] == ["Default"]
    assert receipt.sender == "Default"


def test_a_client_sender_that_breaks_the_gateways_rules_is_refused_at_construction() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.ThousandSms(email="me@example.com", password="p", sender="Магазин")
    assert caught.value.field == "sender"


@pytest.mark.parametrize("number", ["12345", "+7 916 abc", "7916000000012345"])
async def test_a_malformed_phone_number_is_refused_before_any_request(
    fake_thousandsms: FakeThousandSms, number: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to=number, text="Hi"))
    assert caught.value.field == "to"
    assert fake_thousandsms.calls == []


async def test_a_scheduled_message_is_refused_because_1000sms_cannot_schedule(
    fake_thousandsms: FakeThousandSms,
) -> None:
    from datetime import datetime

    async with fake_thousandsms.client(sender="sms-tester") as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to="79160000000", text="Hi", at=datetime(2030, 1, 1, 9, 0)))
    assert caught.value.field == "at"
    assert fake_thousandsms.calls == []


async def test_a_message_with_a_ttl_is_refused_because_1000sms_has_no_ttl(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(Message(to="79160000000", text="Hi", ttl=60))
    assert caught.value.field == "ttl"
    assert fake_thousandsms.calls == []


# -- send_many ------------------------------------------------------------------------


@WIRES
async def test_send_many_returns_one_receipt_per_message_in_order(
    fake_thousandsms: FakeThousandSms, fmt: str, verb: str
) -> None:
    numbers = [f"7916000000{i}" for i in range(6)]
    messages = [Message(to=n, text=f"Hi {i}", key=i) for i, n in enumerate(numbers)]
    async with fake_thousandsms.client(sender="sms-tester", format=fmt, method=verb) as sms:
        receipts = await sms.send_many(messages)
    assert [r.message.key for r in receipts] == list(range(6))
    assert all(r.state is DeliveryState.QUEUED for r in receipts)
    by_phone = {e.phone: e.id for e in fake_thousandsms.ledger}
    assert [r.message_id for r in receipts] == [by_phone[n] for n in numbers]
    assert len(fake_thousandsms.calls_to("push_msg")) == 6


async def test_a_rejected_message_in_send_many_keeps_its_typed_error_and_the_rest_go_out() -> None:
    fake = FakeThousandSms(blacklist={"79160000002"})
    messages = [Message(to=f"7916000000{i}", text="Hi", key=i) for i in range(4)]
    async with fake.client(sender="sms-tester") as sms:
        receipts = await sms.send_many(messages)
    rejected = receipts[2]
    assert rejected.state is DeliveryState.REJECTED
    assert isinstance(rejected.error, aiosms.BlacklistedError)
    assert rejected.error.code == 618
    assert rejected.error.may_have_been_sent is False
    assert rejected.message_id is None
    assert [r.state for i, r in enumerate(receipts) if i != 2] == [DeliveryState.QUEUED] * 3
    assert sorted(e.phone for e in fake.ledger) == ["79160000000", "79160000001", "79160000003"]


async def test_send_many_turns_invalid_input_into_rejected_receipts_without_a_request(
    fake_thousandsms: FakeThousandSms,
) -> None:
    from datetime import datetime

    messages = [
        Message(to="79160000000", text="ok"),
        Message(to="79160000001", text="bad sender", sender="Магазин"),
        Message(to="79160000002", text="scheduled", at=datetime(2030, 1, 1)),
        Message(to="79160000003", text="with ttl", ttl=5),
    ]
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        receipts = await sms.send_many(messages)
    assert receipts[0].state is DeliveryState.QUEUED
    fields = []
    for receipt in receipts[1:]:
        assert receipt.state is DeliveryState.REJECTED
        assert isinstance(receipt.error, aiosms.ValidationError)
        fields.append(receipt.error.field)
    assert fields == ["sender", "at", "ttl"]
    assert len(fake_thousandsms.calls_to("push_msg")) == 1


async def test_send_many_stops_sending_after_the_money_runs_out() -> None:
    # 5 of balance at 2.5 a part pays for two one-part messages.
    fake = FakeThousandSms(balance=Decimal("5"), price=Decimal("2.5"))
    messages = [Message(to=f"7916000000{i}", text="Hi") for i in range(5)]
    async with fake.client(sender="sms-tester", max_concurrency=1) as sms:
        receipts = await sms.send_many(messages)
    assert [r.state for r in receipts[:2]] == [DeliveryState.QUEUED] * 2
    assert all(r.state is DeliveryState.REJECTED for r in receipts[2:])
    assert all(isinstance(r.error, aiosms.InsufficientFundsError) for r in receipts[2:])
    assert all(r.error is not None and not r.error.may_have_been_sent for r in receipts[2:])
    assert len(fake.calls_to("push_msg")) == 3
    assert fake.balance == Decimal("0")


async def test_send_many_stops_sending_after_the_gateway_refuses_the_login() -> None:
    fake = FakeThousandSms()
    messages = [Message(to=f"7916000000{i}", text="Hi") for i in range(4)]
    async with fake.client(password="wrong", sender="sms-tester", max_concurrency=1) as sms:
        receipts = await sms.send_many(messages)
    assert all(r.state is DeliveryState.REJECTED for r in receipts)
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts)
    assert len(fake.calls_to("push_msg")) == 1


async def test_send_many_keeps_at_most_max_concurrency_requests_in_flight() -> None:
    fake = FakeThousandSms(latency=0.02)
    messages = [Message(to=f"791600000{i:02}", text="Hi") for i in range(12)]
    async with fake.client(sender="sms-tester", max_concurrency=3) as sms:
        receipts = await sms.send_many(messages)
    assert fake.peak_in_flight == 3
    assert len(receipts) == 12
    assert len(fake.ledger) == 12


async def test_send_many_of_nothing_sends_nothing(fake_thousandsms: FakeThousandSms) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        assert await sms.send_many([]) == []
    assert fake_thousandsms.calls == []


# -- status ---------------------------------------------------------------------------


@WIRES
async def test_a_report_moves_from_queued_to_the_smsc_to_delivered(
    fake_thousandsms: FakeThousandSms, fmt: str, verb: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", format=fmt, method=verb) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Привет"))
        assert receipt.message_id is not None
        reports = [await sms.status(receipt.message_id) for _ in range(3)]
    assert [r.state for r in reports] == [
        DeliveryState.QUEUED,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
    ]
    assert [r.code for r in reports] == [4, 8, 1]
    assert [r.state_text for r in reports] == [
        "В очереди на SMSC",
        "Доставлено в SMSC",
        "Доставлено",
    ]
    first, _, last = reports
    assert first.message_id == receipt.message_id
    assert first.user_id == "1001"
    assert (first.sender, first.text, first.phone) == ("sms-tester", "Привет", "79160000000")
    assert first.parts == 1
    assert first.flash is False
    assert first.price_per_part == Decimal("2.5")
    assert first.cost == Decimal("2.5")
    assert first.start_time is not None
    assert first.start_time.utcoffset() == MOSCOW_OFFSET
    assert first.last_update is None
    assert last.last_update is not None
    assert last.last_update.utcoffset() == MOSCOW_OFFSET
    assert last.state.is_final


async def test_a_message_to_an_undeliverable_number_ends_undelivered() -> None:
    fake = FakeThousandSms(undeliverable_numbers={"79160000000"})
    async with fake.client(sender="sms-tester") as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
        assert receipt.message_id is not None
        reports = [await sms.status(receipt.message_id) for _ in range(3)]
    assert [r.code for r in reports] == [4, 8, 2]
    assert reports[-1].state is DeliveryState.UNDELIVERED
    assert reports[-1].state_text == "Не доставлено"


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (0, DeliveryState.SENT),
        (1, DeliveryState.DELIVERED),
        (2, DeliveryState.UNDELIVERED),
        (4, DeliveryState.QUEUED),
        (8, DeliveryState.SENT),
        (16, DeliveryState.UNDELIVERED),
    ],
)
async def test_each_documented_report_state_maps_to_its_delivery_state(
    fake_thousandsms: FakeThousandSms, code: int, state: DeliveryState
) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
        assert receipt.message_id is not None
        fake_thousandsms.set_state(receipt.message_id, code)
        report = await sms.status(receipt.message_id)
    assert report.code == code
    assert report.state is state


async def test_a_flash_message_reports_flash_and_a_standard_one_does_not(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        flash = await sms.send(Message(to="79160000000", text="Flash"))
        standard = await sms.send(Message(to="79160000001", text="Standard"))
        assert flash.message_id is not None
        assert standard.message_id is not None
        fake_thousandsms.set_state(flash.message_id, 4, flash=True)
        assert (await sms.status(flash.message_id)).flash is True
        assert (await sms.status(standard.message_id)).flash is False


async def test_status_of_an_unknown_id_raises_message_not_found(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client() as sms:
        with pytest.raises(aiosms.MessageNotFoundError) as caught:
            await sms.status("123456")
    assert caught.value.code == 602
    assert caught.value.provider == "1000sms"


async def test_status_of_a_malformed_id_raises_message_not_found_with_code_1(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client() as sms:
        with pytest.raises(aiosms.MessageNotFoundError) as caught:
            await sms.status("not-a-number")
    assert caught.value.code == 1


@WIRES
async def test_status_many_reports_in_order_and_marks_unknown_ids_not_found(
    fake_thousandsms: FakeThousandSms, fmt: str, verb: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", format=fmt, method=verb) as sms:
        first = await sms.send(Message(to="79160000000", text="one"))
        second = await sms.send(Message(to="79160000001", text="two"))
        assert first.message_id is not None
        assert second.message_id is not None
        reports = await sms.status_many([first.message_id, "999999", second.message_id])
    assert [r.message_id for r in reports] == [first.message_id, "999999", second.message_id]
    assert [r.state for r in reports] == [
        DeliveryState.QUEUED,
        DeliveryState.REJECTED,
        DeliveryState.QUEUED,
    ]
    assert isinstance(reports[1].error, aiosms.MessageNotFoundError)
    assert [reports[0].text, reports[2].text] == ["one", "two"]


async def test_status_many_keeps_at_most_max_concurrency_requests_in_flight() -> None:
    fake = FakeThousandSms()
    async with fake.client(sender="sms-tester", max_concurrency=4) as sms:
        receipts = await sms.send_many(
            [Message(to=f"791600000{i:02}", text="Hi") for i in range(10)]
        )
        fake.latency = 0.02
        reports = await sms.status_many([r.message_id or "" for r in receipts])
    assert fake.peak_in_flight == 4
    assert [r.message_id for r in reports] == [r.message_id for r in receipts]


async def test_status_many_reports_a_refusal_of_the_request_as_every_ids_unknown_state(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client(password="wrong") as sms:
        reports = await sms.status_many(["1", "2", "3"])
    assert [r.message_id for r in reports] == ["1", "2", "3"]
    assert {r.state for r in reports} == {DeliveryState.UNKNOWN}
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in reports)


# -- profile and balance --------------------------------------------------------------


@WIRES
async def test_profile_gives_every_documented_field(fmt: str, verb: str) -> None:
    fake = FakeThousandSms(
        email="shop@example.com",
        balance=Decimal("150.75"),
        sender_name="MyShop",
        user_id="4242",
        first_name="Иван",
        last_name="Петров",
        credits_name="руб.",
        currency="RUB",
        referral_id="17",
    )
    async with fake.client(format=fmt, method=verb) as sms:
        profile = await sms.profile()
    assert profile == aiosms.Profile(
        id="4242",
        email="shop@example.com",
        first_name="Иван",
        last_name="Петров",
        credits=Decimal("150.75"),
        credits_used=Decimal("0"),
        credits_name="руб.",
        currency="RUB",
        sender="MyShop",
        referral_id="17",
    )
    assert fake.calls == [CallRecord("get_profile", verb, fmt, 0)]


@WIRES
async def test_balance_goes_down_by_parts_times_the_price_per_part(
    fake_thousandsms: FakeThousandSms, fmt: str, verb: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", format=fmt, method=verb) as sms:
        before = await sms.balance()
        await sms.send(Message(to="79160000000", text="Ж" * 71))  # 71 > 70: two parts
        after = await sms.balance()
        profile = await sms.profile()
    assert before == aiosms.Balance(Decimal("1000"), "руб.")
    assert after == aiosms.Balance(Decimal("995.0"), "руб.")
    assert profile.credits_used == Decimal("5.0")


# -- over a real socket ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_call_works_over_a_real_loopback_socket(fmt: str) -> None:
    fake = FakeThousandSms()
    async with (
        fake.serve() as base_url,
        aiosms.ThousandSms(
            email=fake.email,
            password=fake.password,
            sender="sms-tester",
            base_url=base_url,
            format=fmt,  # type: ignore[arg-type]
        ) as sms,
    ):
        receipt = await sms.send(Message(to="79160000000", text="Привет"))
        assert receipt.message_id is not None
        report = await sms.status(receipt.message_id)
        balance = await sms.balance()
        [many] = await sms.send_many([Message(to="79160000001", text="Hi")])
    assert base_url.startswith("http://127.0.0.1:")
    assert report.state is DeliveryState.QUEUED
    assert balance.amount == Decimal("997.5")
    assert many.state is DeliveryState.QUEUED
    assert len(fake.ledger) == 2


async def test_the_loopback_fixture_serves_the_fake_fixture(
    fake_thousandsms: FakeThousandSms, fake_thousandsms_url: str
) -> None:
    async with aiosms.ThousandSms(
        email="test@example.com",
        password="test-password",
        sender="sms-tester",
        base_url=fake_thousandsms_url,
        method="GET",
    ) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert receipt.message_id == fake_thousandsms.ledger[0].id
    assert fake_thousandsms.calls == [CallRecord("push_msg", "GET", "json", 1)]


# -- lifecycle ------------------------------------------------------------------------


async def test_a_closed_client_refuses_to_send(fake_thousandsms: FakeThousandSms) -> None:
    sms = fake_thousandsms.client(sender="sms-tester")
    async with sms:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await sms.send(Message(to="79160000000", text="Hi"))
    assert fake_thousandsms.calls == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("email", ""),
        ("password", ""),
        ("format", "csv"),
        ("method", "PUT"),
        ("base_url", "ftp://x"),
    ],
)
def test_a_bad_client_option_is_refused_at_construction(option: str, value: str) -> None:
    options = {"email": "me@example.com", "password": "p", option: value}
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.ThousandSms(**options)  # type: ignore[arg-type]
    assert caught.value.field == option
