"""The blocking clients do what the async ones do, against the fakes over loopback HTTP."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from decimal import Decimal

import pytest
from support import msg
from sync_support import loop_threads, mysms, served, thousandsms

import aiosms
from aiosms import DeliveryState, Message
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

SECRET = "S3cr3t-Pa55word-XYZ"


@pytest.fixture
def fake() -> FakeMySms:
    return FakeMySms(password=SECRET)


@pytest.fixture
def url(fake: FakeMySms) -> Iterator[str]:
    with served(fake) as base_url:
        yield base_url


@pytest.fixture
def fake_1000() -> FakeThousandSms:
    return FakeThousandSms(password=SECRET)


@pytest.fixture
def url_1000(fake_1000: FakeThousandSms) -> Iterator[str]:
    with served(fake_1000) as base_url:
        yield base_url


# -- my-sms -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_send_status_and_balance_go_through_the_blocking_client(
    fake: FakeMySms, url: str, backend: str
) -> None:
    with mysms(fake, url, backend=backend) as sms:
        receipt = sms.send(Message(to="+7 911 222-33-33", text="Привет", key="order-1"))
        assert receipt.message_id is not None
        fake.set_state(receipt.message_id, 4)
        report = sms.status(receipt.message_id)
        balance = sms.balance()
    (entry,) = fake.ledger
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.message.key == "order-1"
    assert (entry.phone, entry.text, entry.sender) == ("79112223333", "Привет", "MyShop")
    assert report.state is DeliveryState.DELIVERED
    assert balance.amount == fake.balance


def test_send_many_and_status_many_keep_the_order_and_use_packets(
    fake: FakeMySms, url: str
) -> None:
    messages = [msg(f"m{i}") for i in range(25)]
    with mysms(fake, url, packet_size=10) as sms:
        receipts = sms.send_many(iter(messages))
        ids = [r.message_id for r in receipts]
        assert all(ids)
        reports = sms.status_many(i for i in ids if i is not None)
    assert [r.message.text for r in receipts] == [f"m{i}" for i in range(25)]
    # Packets travel concurrently, so the gateway may take them in any order: packets
    # of 10, 10 and 5, each message once.
    assert sorted(e.text for e in fake.ledger) == sorted(f"m{i}" for i in range(25))
    assert [r.message_id for r in reports] == ids
    assert sorted(c.messages for c in fake.calls_to("send")) == [5, 10, 10]


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (-11, aiosms.SenderError),
        (-12, aiosms.RecipientError),
        (-13, aiosms.InsufficientFundsError),
    ],
)
def test_a_refusal_raises_its_typed_provider_error(
    fake: FakeMySms, url: str, code: int, error_class: type[aiosms.ProviderError]
) -> None:
    fake.reject_number("79112223333", code)
    with mysms(fake, url) as sms, pytest.raises(error_class) as caught:
        sms.send(msg())
    assert caught.value.code == code
    assert caught.value.provider == "my-sms"
    assert caught.value.may_have_been_sent is False
    assert fake.ledger == []


def test_a_wrong_password_is_an_authentication_error_on_every_call(
    fake: FakeMySms, url: str
) -> None:
    with mysms(fake, url, password="wrong-password") as sms:
        for call in (lambda: sms.send(msg()), lambda: sms.status("x"), sms.balance):
            with pytest.raises(aiosms.AuthenticationError) as caught:
                call()
            assert caught.value.code == -1
    assert fake.ledger == []


def test_an_unknown_id_is_message_not_found(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms, pytest.raises(aiosms.MessageNotFoundError):
        sms.status("no-such-id")


def test_bad_input_is_refused_before_any_request(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            sms.send(Message(to="79112223333", text="Hi", sender="a name far too long"))
        assert caught.value.field == "sender"
        with pytest.raises(aiosms.ValidationError):
            sms.send(Message(to="79112223333", text="Hi", ttl=-5))
    assert sum(fake.received.values()) == 0


def test_bad_options_are_refused_at_construction_without_a_thread(url: str) -> None:
    before = loop_threads()
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.sync.MySms(username="u", password="p", sender="x" * 20, base_url=url)
    assert caught.value.field == "sender"
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.sync.MySms(username="u", password="p", format="yaml")  # type: ignore[arg-type]
    assert caught.value.field == "format"
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.sync.MySms(username="u", password="p", backend="curio")  # type: ignore[arg-type]
    assert caught.value.field == "backend"
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.sync.MySms(username="u", password="p", transport="aiohttp", backend="trio")
    assert caught.value.field == "transport"
    assert loop_threads() == before


def test_options_read_back_as_the_async_client_has_them(fake: FakeMySms, url: str) -> None:
    sms = mysms(fake, url, packet_size=7, price="0.5", format="xml", max_concurrency=3)
    assert (sms.username, sms.sender, sms.base_url) == (fake.username, "MyShop", url)
    assert (sms.packet_size, sms.price, sms.format, sms.method) == (
        7,
        Decimal("0.5"),
        "xml",
        "POST",
    )
    assert (sms.max_concurrency, sms.backend, sms.provider) == (3, "asyncio", "my-sms")
    assert sms._loop_thread is None  # nothing started by building it
    sms.close()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.reset_after(), "ReadError"),
        (Fault.http_status(503), "HTTP 503"),
        (Fault.malformed(), None),
        (Fault.internal_error(), None),
    ],
)
def test_a_fault_after_the_request_left_is_an_unknown_outcome_never_resent(
    fake: FakeMySms, url: str, fault: Fault, kind: str | None
) -> None:
    fake.faults.add(fault, endpoint="send")
    message = msg("code 1234")
    with mysms(fake, url) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            sms.send(message)
        assert caught.value.may_have_been_sent is True
        assert caught.value.messages == (message,)
        # The client is still usable after the fault.
        assert sms.balance().amount == fake.balance
    assert fake.received["send"] == 1
    if kind is not None and kind != "ReadError":
        assert caught.value.kind == kind


def test_a_send_to_a_closed_port_is_a_transport_error_that_says_not_sent(fake: FakeMySms) -> None:
    with served(fake) as base_url:
        pass  # the port is closed again now
    with mysms(fake, base_url) as sms, pytest.raises(aiosms.TransportError) as caught:
        sms.send(msg())
    assert caught.value.may_have_been_sent is False


def test_a_stalled_send_past_its_timeout_is_an_unknown_outcome(fake: FakeMySms, url: str) -> None:
    fake.faults.add(Fault.stall(5), endpoint="send")
    with mysms(fake, url, timeout=0.2) as sms, pytest.raises(aiosms.DeliveryUnknownError):
        sms.send(msg())


def test_the_password_is_in_no_repr_and_no_exception(fake: FakeMySms, url: str) -> None:
    texts: list[str] = []
    fake.faults.add(Fault.http_status(503), endpoint="send")
    fake.faults.add(Fault.http_status(503), times=5, endpoint="credit")
    with mysms(fake, url, method="GET") as sms:
        texts.append(repr(sms))
        for call in (lambda: sms.send(msg()), sms.balance):
            try:
                call()
            except aiosms.SmsError as error:
                texts.append("".join(traceback.format_exception(error)))
                texts += [str(error), repr(error), repr(vars(error))]
            else:  # pragma: no cover - the fault is injected
                pytest.fail("the call should have failed")
        texts.append(repr(vars(sms)))
        texts.append(repr(vars(sms._loop)))
    assert len(texts) == 11
    for text in texts:
        assert SECRET not in text


# -- 1000sms ----------------------------------------------------------------------------


def test_thousandsms_sends_reports_and_gives_profile_and_balance(
    fake_1000: FakeThousandSms, url_1000: str
) -> None:
    with thousandsms(fake_1000, url_1000) as sms:
        receipt = sms.send(Message(to="+7 916 000-00-00", text="Hello"))
        assert receipt.message_id is not None
        report = sms.status(receipt.message_id)
        profile = sms.profile()
        balance = sms.balance()
        after_one = fake_1000.balance
        receipts = sms.send_many([Message(to="79160000001", text=f"m{i}") for i in range(3)])
    (entry, *rest) = fake_1000.ledger
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.cost == Decimal("2.5")
    assert report.message_id == receipt.message_id
    assert profile.email == fake_1000.email
    assert balance.amount == after_one
    assert [r.message.text for r in receipts] == ["m0", "m1", "m2"]
    assert [e.text for e in rest] == ["m0", "m1", "m2"]


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (623, aiosms.InsufficientFundsError),
        (618, aiosms.BlacklistedError),
        (624, aiosms.ContentError),
        (605, aiosms.AccountError),
    ],
)
def test_thousandsms_refusals_raise_their_typed_errors(
    fake_1000: FakeThousandSms, url_1000: str, code: int, error_class: type[aiosms.ProviderError]
) -> None:
    fake_1000.answer_with(code, method="push_msg")
    with thousandsms(fake_1000, url_1000) as sms, pytest.raises(error_class) as caught:
        sms.send(Message(to="79160000000", text="Hi"))
    assert caught.value.code == code
    assert caught.value.provider == "1000sms"
    assert fake_1000.ledger == []


def test_thousandsms_refuses_a_schedule_before_any_request(
    fake_1000: FakeThousandSms, url_1000: str
) -> None:
    with thousandsms(fake_1000, url_1000) as sms, pytest.raises(aiosms.ValidationError):
        sms.send(Message(to="79160000000", text="Hi", ttl=60))
    assert sum(fake_1000.received.values()) == 0


def test_thousandsms_password_is_in_no_repr_and_no_exception(
    fake_1000: FakeThousandSms, url_1000: str
) -> None:
    fake_1000.faults.add(Fault.http_status(503), endpoint="push_msg")
    with thousandsms(fake_1000, url_1000, method="GET") as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            sms.send(Message(to="79160000000", text="Hi"))
        texts = [repr(sms), str(caught.value), repr(caught.value)]
        texts.append("".join(traceback.format_exception(caught.value)))
    for text in texts:
        assert SECRET not in text
