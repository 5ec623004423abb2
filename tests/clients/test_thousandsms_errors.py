"""1000sms refusals, faults and retries: every documented err_code to its error class.

The code → class table below is written from DESIGN.md's error tree, not read from
the client, so a wrong entry in the client's table fails here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import aiosms
from aiosms import DeliveryState, Message, RetryPolicy
from aiosms.testing import FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

NO_WAIT = RetryPolicy(initial_delay=0)
NO_RETRY = RetryPolicy(read_retries=0, send_retries=0)

#: Every documented err_code but 602 (two meanings, tested on its own).
DOCUMENTED: dict[int, type[aiosms.ProviderError]] = {
    1: aiosms.MessageNotFoundError,
    2: aiosms.AuthenticationError,
    7: aiosms.RequestError,
    99: aiosms.GatewayError,
    501: aiosms.GatewayError,
    603: aiosms.MessageNotFoundError,
    604: aiosms.AuthenticationError,
    605: aiosms.AccountError,
    607: aiosms.SenderError,
    608: aiosms.SenderError,
    609: aiosms.AccountError,
    610: aiosms.AccountError,
    611: aiosms.AccountError,
    612: aiosms.AccountError,
    614: aiosms.AccountError,
    615: aiosms.AccountError,
    616: aiosms.SenderError,
    617: aiosms.RecipientError,
    618: aiosms.BlacklistedError,
    619: aiosms.RecipientError,
    620: aiosms.SenderError,
    621: aiosms.SenderError,
    622: aiosms.BlacklistedError,
    623: aiosms.InsufficientFundsError,
    624: aiosms.ContentError,
    699: aiosms.GatewayError,
}
CODES = pytest.mark.parametrize(("code", "error"), sorted(DOCUMENTED.items()))
USER_NOT_FOUND = "Пользователя не существует."
SMS_NOT_FOUND = "SMS не существует."


def hi() -> Message:
    return Message(to="79160000000", text="Hi")


async def call(sms: aiosms.ThousandSms, method: str, message_id: str = "4000001") -> object:
    """Make one call by the gateway's name for it."""
    if method == "push_msg":
        return await sms.send(hi())
    if method == "get_msg_report":
        return await sms.status(message_id)
    if method == "get_profile":
        return await sms.profile()
    return await sms.balance()


# -- every documented code --------------------------------------------------------------


@CODES
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_documented_refusal_of_a_send_raises_its_class_and_sends_nothing(
    fake_thousandsms: FakeThousandSms, code: int, error: type[aiosms.ProviderError], fmt: str
) -> None:
    fake_thousandsms.answer_with(code, method="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", format=fmt) as sms:
        with pytest.raises(aiosms.ProviderError) as caught:
            await sms.send(hi())
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.provider == "1000sms"
    assert caught.value.may_have_been_sent is False
    assert caught.value.text  # the gateway's words are kept
    assert fake_thousandsms.ledger == []
    assert len(fake_thousandsms.calls_to("push_msg")) == 1


@CODES
async def test_a_documented_refusal_inside_send_many_is_a_rejected_receipt(
    fake_thousandsms: FakeThousandSms, code: int, error: type[aiosms.ProviderError]
) -> None:
    fake_thousandsms.answer_with(code, method="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", max_concurrency=1) as sms:
        receipts = await sms.send_many([hi()])
    (receipt,) = receipts
    assert receipt.state is DeliveryState.REJECTED
    assert type(receipt.error) is error
    assert receipt.error.code == code


@CODES
@pytest.mark.parametrize("method", ["get_msg_report", "get_profile"])
async def test_a_documented_refusal_of_a_read_raises_its_class(
    fake_thousandsms: FakeThousandSms, code: int, error: type[aiosms.ProviderError], method: str
) -> None:
    fake_thousandsms.answer_with(code)
    async with fake_thousandsms.client(retry=NO_RETRY) as sms:
        with pytest.raises(aiosms.ProviderError) as caught:
            await call(sms, method)
    assert type(caught.value) is error
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("method", "text", "error"),
    [
        ("push_msg", USER_NOT_FOUND, aiosms.AuthenticationError),
        ("get_profile", USER_NOT_FOUND, aiosms.AuthenticationError),
        ("get_msg_report", USER_NOT_FOUND, aiosms.AuthenticationError),
        ("get_msg_report", SMS_NOT_FOUND, aiosms.MessageNotFoundError),
        ("get_profile", SMS_NOT_FOUND, aiosms.MessageNotFoundError),
        # Words that name neither: the call decides.
        ("get_msg_report", "", aiosms.MessageNotFoundError),
        ("get_profile", "", aiosms.AuthenticationError),
        ("push_msg", "", aiosms.AuthenticationError),
    ],
)
async def test_602_is_told_apart_by_the_replys_text(
    fake_thousandsms: FakeThousandSms, method: str, text: str, error: type[aiosms.ProviderError]
) -> None:
    fake_thousandsms.answer_with(602, text=text, method=method)
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_RETRY) as sms:
        with pytest.raises(aiosms.ProviderError) as caught:
            await call(sms, method)
    assert type(caught.value) is error
    assert caught.value.code == 602


async def test_an_unknown_user_is_an_account_level_error_that_stops_send_many(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.answer_with(602, text=USER_NOT_FOUND, method="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", max_concurrency=1) as sms:
        receipts = await sms.send_many([hi(), hi(), hi()])
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts)
    assert all(r.state is DeliveryState.REJECTED for r in receipts)
    assert len(fake_thousandsms.calls_to("push_msg")) == 1


async def test_an_undocumented_code_in_reply_to_a_send_is_an_unknown_outcome(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.answer_with(777, text="Что-то новое", method="push_msg")
    message = hi()
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(message)
    assert caught.value.may_have_been_sent is True
    assert caught.value.messages == (message,)


async def test_an_undocumented_code_in_reply_to_a_read_is_a_gateway_error(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.answer_with(777, text="Что-то новое")
    async with fake_thousandsms.client() as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.profile()
    assert caught.value.code == 777
    assert len(fake_thousandsms.calls_to("get_profile")) == 1


# -- the fake answers bad input with the documented codes ---------------------------------


@pytest.mark.parametrize(
    ("options", "text", "error", "code"),
    [
        ({"senders": {"MyShop"}}, "Hi", aiosms.SenderError, 607),
        ({"blacklist": {"79160000000"}}, "Hi", aiosms.BlacklistedError, 618),
        ({"global_blacklist": {"79160000000"}}, "Hi", aiosms.BlacklistedError, 622),
        ({"balance": Decimal("2")}, "Hi", aiosms.InsufficientFundsError, 623),
        ({"forbidden_words": {"казино"}}, "Лучшее КАЗИНО", aiosms.ContentError, 624),
        ({"blocked": True}, "Hi", aiosms.AccountError, 605),
    ],
    ids=["unregistered-sender", "blacklist", "global-blacklist", "funds", "words", "blocked"],
)
async def test_the_fake_refuses_what_the_gateway_refuses_with_the_documented_code(
    options: dict[str, Any], text: str, error: type[aiosms.ProviderError], code: int
) -> None:
    fake = FakeThousandSms(**options)
    async with fake.client(sender="sms-tester") as sms:
        with pytest.raises(error) as caught:
            await sms.send(Message(to="79160000000", text=text))
    assert caught.value.code == code
    assert fake.ledger == []


async def test_a_wrong_password_is_refused_with_code_2(fake_thousandsms: FakeThousandSms) -> None:
    async with fake_thousandsms.client(password="wrong") as sms:
        with pytest.raises(aiosms.AuthenticationError) as caught:
            await sms.profile()
    assert caught.value.code == 2


def push(**fields: str) -> dict[str, str]:
    return {"method": "push_msg", "text": "Hi", "phone": "79160000000", **fields}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"method": "push_msg", "phone": "79160000000", "sender_name": "sms-tester"}, 7),
        (push(phone="1234", sender_name="sms-tester"), 617),
        (push(sender_name="Тест"), 620),
        (push(sender_name="abc"), 621),
        (push(sender_name="Shop123"), 621),
        (push(sender_name="A" * 12), 608),
        ({"method": "get_msg_report"}, 7),
        ({"method": "get_msg_report", "id": "abc"}, 1),
        ({"method": "get_msg_report", "id": "42"}, 602),
        ({}, 7),
    ],
)
async def test_the_fake_answers_raw_bad_input_with_the_documented_code(
    fake_thousandsms: FakeThousandSms, fields: dict[str, str], code: int
) -> None:
    # The client checks these before the wire; a raw request shows the fake's own rules.
    form = {"email": "test@example.com", "password": "test-password", "format": "json", **fields}
    async with httpx.AsyncClient(transport=fake_thousandsms.httpx_transport()) as raw:
        response = await raw.post(fake_thousandsms.base_url, data=form)
    reply = response.json()
    assert reply["msg"]["err_code"] == str(code)
    assert reply["msg"]["type"] == "error"
    assert fake_thousandsms.ledger == []


async def test_the_fake_answers_xml_when_no_format_is_asked_for(
    fake_thousandsms: FakeThousandSms,
) -> None:
    form = {"method": "get_profile", "email": "test@example.com", "password": "test-password"}
    async with httpx.AsyncClient(transport=fake_thousandsms.httpx_transport()) as raw:
        response = await raw.get(fake_thousandsms.base_url, params=form)
    assert response.text.startswith("<?xml")
    assert "<err_code>0</err_code>" in response.text
    assert "<email>test@example.com</email>" in response.text


# -- faults on sends: at most once --------------------------------------------------------


async def test_a_reset_after_the_gateway_accepted_is_an_unknown_outcome_sent_exactly_once(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.reset_after(), endpoint="push_msg")
    message = hi()
    async with fake_thousandsms.client(sender="sms-tester") as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(message)
    assert caught.value.may_have_been_sent is True
    assert caught.value.messages == (message,)
    assert len(fake_thousandsms.ledger) == 1
    assert len(fake_thousandsms.calls_to("push_msg")) == 1


async def test_a_reset_after_accept_over_a_real_socket_is_an_unknown_outcome_sent_once() -> None:
    fake = FakeThousandSms()
    fake.faults.add(Fault.reset_after(), endpoint="push_msg")
    async with (
        fake.serve() as base_url,
        aiosms.ThousandSms(
            email=fake.email, password=fake.password, sender="sms-tester", base_url=base_url
        ) as sms,
    ):
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(hi())
    assert len(fake.ledger) == 1
    assert len(fake.calls_to("push_msg")) == 1


async def test_send_many_reports_a_reset_after_accept_as_unknown_and_goes_on(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.reset_after(), endpoint="push_msg")
    messages = [Message(to=f"7916000000{i}", text="Hi") for i in range(3)]
    async with fake_thousandsms.client(sender="sms-tester", max_concurrency=1) as sms:
        receipts = await sms.send_many(messages)
    assert receipts[0].state is DeliveryState.UNKNOWN
    assert isinstance(receipts[0].error, aiosms.DeliveryUnknownError)
    assert [r.state for r in receipts[1:]] == [DeliveryState.QUEUED] * 2
    assert len(fake_thousandsms.ledger) == 3


@pytest.mark.parametrize(
    "fault",
    [Fault.truncated(), Fault.empty(), Fault.html(), Fault.malformed(), Fault.reset_before()],
    ids=["truncated", "empty", "html", "malformed", "reset-before"],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_send_whose_reply_cannot_be_read_is_an_unknown_outcome(
    fake_thousandsms: FakeThousandSms, fault: Fault, fmt: str
) -> None:
    fake_thousandsms.faults.add(fault, endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", format=fmt) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(hi())
    assert fake_thousandsms.faults.pending == 0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_send_answered_with_http_5xx_is_an_unknown_outcome_and_not_retried(
    fake_thousandsms: FakeThousandSms, status: int
) -> None:
    fake_thousandsms.faults.add(Fault.http_status(status), times=2, endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(hi())
    assert caught.value.kind == f"HTTP {status}"
    # One fault of two was used: the send went out once.
    assert fake_thousandsms.faults.pending == 1


async def test_a_gateway_internal_error_in_reply_to_a_send_is_rejected_and_not_retried(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.internal_error(), times=2, endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.send(hi())
        [receipt] = await sms.send_many([hi()])
    assert caught.value.code == 99
    assert caught.value.may_have_been_sent is False
    assert receipt.state is DeliveryState.REJECTED
    assert isinstance(receipt.error, aiosms.GatewayError)
    assert fake_thousandsms.ledger == []
    assert fake_thousandsms.faults.pending == 0


@pytest.mark.parametrize("code", [501, 699])
async def test_a_transient_gateway_failure_of_a_send_is_not_retried(
    fake_thousandsms: FakeThousandSms, code: int
) -> None:
    fake_thousandsms.answer_with(code, method="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.send(hi())
    assert caught.value.may_have_been_sent is False
    assert len(fake_thousandsms.calls_to("push_msg")) == 1
    assert fake_thousandsms.ledger == []


async def test_a_refused_connection_is_retried_because_nothing_left(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.refuse(), endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        receipt = await sms.send(hi())
    assert receipt.state is DeliveryState.QUEUED
    assert len(fake_thousandsms.ledger) == 1


async def test_a_connection_refused_every_time_is_a_transport_error_saying_nothing_was_sent(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.refuse(), times=3, endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(hi())
    assert caught.value.may_have_been_sent is False
    assert fake_thousandsms.ledger == []
    assert fake_thousandsms.faults.pending == 0


async def test_a_send_that_times_out_is_an_unknown_outcome(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.stall(5), endpoint="push_msg")
    async with fake_thousandsms.client(sender="sms-tester", timeout=0.05) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(hi())
    assert caught.value.kind == "ReadTimeout"


# -- faults on reads: retried -------------------------------------------------------------


@pytest.mark.parametrize("code", [501, 699])
async def test_reads_retry_the_gateways_transient_failures(
    fake_thousandsms: FakeThousandSms, code: int
) -> None:
    fake_thousandsms.answer_with(code, times=2, method="get_profile")
    async with fake_thousandsms.client(retry=NO_WAIT) as sms:
        profile = await sms.profile()
    assert profile.email == "test@example.com"
    assert len(fake_thousandsms.calls_to("get_profile")) == 3


async def test_status_retries_a_transient_failure_and_then_reports(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", retry=NO_WAIT) as sms:
        receipt = await sms.send(hi())
        assert receipt.message_id is not None
        fake_thousandsms.answer_with(699, method="get_msg_report")
        report = await sms.status(receipt.message_id)
    assert report.state is DeliveryState.QUEUED
    assert len(fake_thousandsms.calls_to("get_msg_report")) == 2


async def test_reads_give_up_on_a_transient_failure_after_the_allowed_retries(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.answer_with(501, times=5, method="get_profile")
    async with fake_thousandsms.client(retry=RetryPolicy(initial_delay=0, read_retries=2)) as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.profile()
    assert caught.value.code == 501
    assert caught.value.transient is True
    assert len(fake_thousandsms.calls_to("get_profile")) == 3


async def test_reads_do_not_retry_error_99(fake_thousandsms: FakeThousandSms) -> None:
    fake_thousandsms.faults.add(Fault.internal_error(), times=2, endpoint="get_profile")
    async with fake_thousandsms.client(retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.profile()
    assert caught.value.code == 99
    assert fake_thousandsms.faults.pending == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_reads_retry_http_5xx(fake_thousandsms: FakeThousandSms, status: int) -> None:
    fake_thousandsms.faults.add(Fault.http_status(status), times=2, endpoint="get_profile")
    async with fake_thousandsms.client(retry=NO_WAIT) as sms:
        balance = await sms.balance()
    assert balance.amount == Decimal("1000")
    assert fake_thousandsms.faults.pending == 0


async def test_reads_raise_a_transport_error_when_5xx_outlasts_the_retries(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.http_status(503), times=3, endpoint="get_msg_report")
    async with fake_thousandsms.client(retry=NO_WAIT) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.status("4000001")
    assert caught.value.status_code == 503


async def test_reads_retry_a_reset_connection(fake_thousandsms: FakeThousandSms) -> None:
    fake_thousandsms.faults.add(Fault.reset_before(), endpoint="get_profile")
    async with fake_thousandsms.client(retry=NO_WAIT) as sms:
        profile = await sms.profile()
    assert profile.id == "1001"


@pytest.mark.parametrize(
    "fault",
    [Fault.truncated(), Fault.empty(), Fault.html(), Fault.malformed()],
    ids=["truncated", "empty", "html", "malformed"],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("method", ["get_msg_report", "get_profile", "balance"])
async def test_a_read_whose_reply_cannot_be_read_is_a_protocol_error(
    fake_thousandsms: FakeThousandSms, fault: Fault, fmt: str, method: str
) -> None:
    async with fake_thousandsms.client(sender="sms-tester", format=fmt) as sms:
        receipt = await sms.send(hi())
        assert receipt.message_id is not None
        fake_thousandsms.faults.add(fault)
        with pytest.raises(aiosms.ProtocolError):
            await call(sms, method, receipt.message_id)
