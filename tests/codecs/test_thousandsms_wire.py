"""What ThousandSms puts on the wire and how it reads replies the fake never sends.

Requests are captured with ``httpx.MockTransport``; replies are hand-written bodies
in the shapes the document allows (any XML root, numbers as strings or ints, PHP's
empty array for no data, dates in formats the document leaves open).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import aiosms
from aiosms import DeliveryState, Message, RetryPolicy

pytestmark = pytest.mark.anyio

MSK = timezone(timedelta(hours=3))
PASSWORD = "pa55-word"


def client_for(
    reply: bytes | Callable[[httpx.Request], bytes],
    seen: list[httpx.Request] | None = None,
    **options: Any,
) -> aiosms.ThousandSms:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        body = reply(request) if callable(reply) else reply
        return httpx.Response(200, content=body)

    options.setdefault("sender", "sms-tester")
    return aiosms.ThousandSms(
        email="me@example.com",
        password=PASSWORD,
        http_transport=httpx.MockTransport(handler),
        retry=RetryPolicy(read_retries=0, send_retries=0),
        **options,
    )


def json_reply(data: Any, err_code: Any = "0", text: str = "Выполнено успешно.") -> bytes:
    msg = {
        "err_code": err_code,
        "text": text,
        "type": "message" if err_code in (0, "0") else "error",
    }
    return json.dumps({"msg": msg, "data": data}, ensure_ascii=False).encode()


PUSH_OK = json_reply({"id": "77", "credits": "1.95", "n_raw_sms": "2", "sender_name": "sms-tester"})


def report(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "501",
        "sender_name": "sms-tester",
        "text": "Hi",
        "phone": "79160000000",
        "type": "1",
        "n_raw_sms": "1",
        "start_time": "2024-03-01 12:30:00",
        "last_update": "",
        "dlr_mask": "",
        "dlr_url": "",
        "sms_validity": "",
        "state": "4",
        "smpp_msgdata": "",
        "credits": "1.95",
        "state_text": "В очереди на SMSC",
    }
    base.update(fields)
    return base


# -- requests -----------------------------------------------------------------------------


async def test_a_post_send_carries_every_argument_as_utf8_form_fields_to_the_gateway() -> None:
    seen: list[httpx.Request] = []
    async with client_for(PUSH_OK, seen) as sms:
        await sms.send(Message(to="8 (916) 000-00-00", text="Привет & пока"))
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://api.1000sms.ru/"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(request.content.decode("ascii"), strict_parsing=True) == {
        "method": ["push_msg"],
        "email": ["me@example.com"],
        "password": [PASSWORD],
        "phone": ["79160000000"],
        "text": ["Привет & пока"],
        "sender_name": ["sms-tester"],
        "format": ["json"],
    }


async def test_a_get_send_carries_the_arguments_in_the_query_and_no_body() -> None:
    seen: list[httpx.Request] = []
    async with client_for(PUSH_OK, seen, method="GET") as sms:
        await sms.send(Message(to="79160000000", text="Hi"))
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/"
    assert dict(request.url.params) == {
        "method": "push_msg",
        "email": "me@example.com",
        "password": PASSWORD,
        "phone": "79160000000",
        "text": "Hi",
        "sender_name": "sms-tester",
        "format": "json",
    }
    assert request.content == b""


async def test_xml_is_asked_for_explicitly_and_reads_carry_their_arguments() -> None:
    seen: list[httpx.Request] = []
    xml = (
        b"<response><msg><err_code>0</err_code><text>ok</text><type>message</type></msg>"
        b"<data><id>1</id><email>me@example.com</email><credits>5</credits></data></response>"
    )
    async with client_for(xml, seen, format="xml") as sms:
        await sms.profile()
    form = parse_qs(seen[0].content.decode())
    assert form["method"] == ["get_profile"]
    assert form["format"] == ["xml"]


async def test_a_status_request_names_the_message_id() -> None:
    seen: list[httpx.Request] = []
    async with client_for(json_reply(report()), seen) as sms:
        await sms.status("4000123")
    form = parse_qs(seen[0].content.decode())
    assert (form["method"], form["id"]) == (["get_msg_report"], ["4000123"])


async def test_a_base_url_without_a_trailing_slash_still_reaches_the_root() -> None:
    seen: list[httpx.Request] = []
    async with client_for(PUSH_OK, seen, base_url="http://127.0.0.1:9") as sms:
        await sms.send(Message(to="79160000000", text="Hi"))
    assert str(seen[0].url) == "http://127.0.0.1:9/"


# -- replies: shapes ----------------------------------------------------------------------


async def test_a_send_receipt_takes_id_parts_cost_and_sender_from_the_reply() -> None:
    async with client_for(PUSH_OK) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert receipt.message_id == "77"
    assert receipt.parts == 2  # the gateway's n_raw_sms wins over a local count of 1
    assert receipt.cost == Decimal("3.90")  # 1.95 per part × 2
    assert receipt.sender == "sms-tester"


async def test_numbers_may_arrive_as_ints() -> None:
    body = json_reply(
        {"id": 77, "credits": 2, "n_raw_sms": 3, "sender_name": "sms-tester"}, err_code=0
    )
    async with client_for(body) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert (receipt.message_id, receipt.parts, receipt.cost) == ("77", 3, Decimal("6"))


async def test_a_refusal_with_an_int_err_code_and_php_empty_data_is_typed() -> None:
    body = json_reply([], err_code=617, text="Неверный формат номера получателя SMS.")
    async with client_for(body) as sms:
        with pytest.raises(aiosms.RecipientError) as caught:
            await sms.send(Message(to="79160000000", text="Hi"))
    assert caught.value.code == 617
    assert caught.value.text == "Неверный формат номера получателя SMS."


async def test_a_send_reply_without_parts_counts_them_locally_and_gives_no_cost() -> None:
    body = json_reply({"id": "9", "sender_name": "sms-tester"})
    async with client_for(body) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Ж" * 71))
    assert receipt.parts == 2
    assert receipt.cost is None


@pytest.mark.parametrize(
    "body",
    [
        json_reply([]),
        json_reply({"credits": "1", "n_raw_sms": "1"}),
        json_reply({"id": "", "n_raw_sms": "1"}),
        b'{"data": {"id": "5"}}',
        b"[]",
    ],
    ids=["no-data", "no-id", "empty-id", "no-msg", "not-an-object"],
)
async def test_a_success_reply_to_a_send_that_says_too_little_is_an_unknown_outcome(
    body: bytes,
) -> None:
    async with client_for(body) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(Message(to="79160000000", text="Hi"))


@pytest.mark.parametrize("root", ["response", "result", "xml", "answer"])
async def test_xml_replies_are_read_under_any_root_at_exact_paths(root: str) -> None:
    # msg and data both hold text, type and id, with different meanings.
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><{root}>'
        "<msg><err_code>0</err_code><text>Выполнено успешно.</text><type>message</type></msg>"
        "<data><id>501</id><sender_name>sms-tester</sender_name><text>Привет</text>"
        "<phone>79160000000</phone><type>0</type><n_raw_sms>1</n_raw_sms>"
        "<start_time>2024-03-01 12:30:00</start_time><last_update/><dlr_mask/><dlr_url/>"
        "<sms_validity/><state>8</state><smpp_msgdata/><credits>1.95</credits>"
        f"<state_text>Доставлено в SMSC</state_text></data></{root}>"
    ).encode()
    async with client_for(xml, format="xml") as sms:
        got = await sms.status("4000123")
    assert got.message_id == "4000123"
    assert got.user_id == "501"
    assert got.text == "Привет"
    assert got.flash is True
    assert got.state is DeliveryState.SENT
    assert got.state_text == "Доставлено в SMSC"
    assert got.price_per_part == Decimal("1.95")
    assert got.last_update is None


async def test_an_xml_refusal_with_empty_data_is_typed() -> None:
    xml = (
        "<response><msg><err_code>2</err_code><text>Неверный логин и(или) пароль.</text>"
        "<type>error</type></msg><data/></response>"
    ).encode()
    async with client_for(xml, format="xml") as sms:
        with pytest.raises(aiosms.AuthenticationError):
            await sms.profile()


async def test_an_undocumented_report_state_is_unknown_and_keeps_its_code() -> None:
    async with client_for(json_reply(report(state="32", state_text=""))) as sms:
        got = await sms.status("1")
    assert got.state is DeliveryState.UNKNOWN
    assert got.code == 32


async def test_a_report_without_its_own_state_text_uses_the_documents_words() -> None:
    async with client_for(json_reply(report(state=16, state_text=""))) as sms:
        got = await sms.status("1")
    assert got.state is DeliveryState.UNDELIVERED
    assert got.state_text == "Не доставлено в SMSC"


@pytest.mark.parametrize("data", [[], report(state=""), report(state="queued"), report(state=None)])
async def test_a_report_that_cannot_be_read_is_a_protocol_error(data: Any) -> None:
    async with client_for(json_reply(data)) as sms:
        with pytest.raises(aiosms.ProtocolError):
            await sms.status("1")


# -- replies: dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01 12:30:00",
        "2024-03-01T12:30:00",
        "2024-03-01T09:30:00+00:00",
        "01.03.2024 12:30:00",
        # 2024-03-01 09:30:00 UTC: 19783 days × 86400 + 9.5 h × 3600.
        "1709285400",
        1709285400,
    ],
)
async def test_a_report_date_becomes_a_moscow_datetime(value: Any) -> None:
    async with client_for(json_reply(report(start_time=value, last_update=value))) as sms:
        got = await sms.status("1")
    expected = datetime(2024, 3, 1, 12, 30, tzinfo=MSK)
    assert got.start_time == expected
    assert got.last_update == expected
    assert got.last_update is not None
    assert got.last_update.utcoffset() == timedelta(hours=3)


@pytest.mark.parametrize("value", ["", None, "0000-00-00 00:00:00", 0])
async def test_an_empty_last_update_means_the_message_is_in_transit(value: Any) -> None:
    async with client_for(json_reply(report(last_update=value))) as sms:
        got = await sms.status("1")
    assert got.last_update is None


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45 99:00:00"])
async def test_a_date_in_an_unknown_format_is_left_out_and_the_state_kept(value: Any) -> None:
    async with client_for(json_reply(report(start_time=value, state="1"))) as sms:
        got = await sms.status("1")
    assert got.start_time is None
    assert got.state is aiosms.DeliveryState.DELIVERED


@pytest.mark.parametrize("value", [True, {"d": 1}, [1]])
async def test_a_date_that_is_no_text_or_number_is_left_out_and_the_state_kept(
    value: Any,
) -> None:
    async with client_for(json_reply(report(start_time=value, state="1"))) as sms:
        got = await sms.status("1")
    assert got.start_time is None
    assert got.state is aiosms.DeliveryState.DELIVERED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01.03.2024 12:30", "2024-03-01T12:30:00+03:00"),
        ("2024-03-01T09:30:00Z", "2024-03-01T12:30:00+03:00"),
    ],
)
async def test_short_and_utc_dates_are_read_in_moscow_time(value: str, expected: str) -> None:
    async with client_for(json_reply(report(start_time=value))) as sms:
        got = await sms.status("1")
    assert got.start_time is not None
    assert got.start_time.isoformat() == expected


# -- replies: profile and balance -----------------------------------------------------------


async def test_a_profile_with_blank_fields_gives_none_for_them() -> None:
    data = {
        "id": 12,
        "email": "me@example.com",
        "first_name": "",
        "last_name": None,
        "credits": 10.5,
        "credits_used": "0",
        "credits_name": "руб.",
        "currency": "",
        "sender_name": "",
        "referral_id": "",
    }
    async with client_for(json_reply(data)) as sms:
        profile = await sms.profile()
        balance = await sms.balance()
    assert profile == aiosms.Profile(
        id="12",
        email="me@example.com",
        credits=Decimal("10.5"),
        credits_used=Decimal("0"),
        credits_name="руб.",
    )
    # No currency: the credits' name stands in for it.
    assert balance == aiosms.Balance(Decimal("10.5"), "руб.")


async def test_a_balance_without_credits_is_a_protocol_error() -> None:
    async with client_for(json_reply({"id": "1", "email": "me@example.com"})) as sms:
        with pytest.raises(aiosms.ProtocolError):
            await sms.balance()


@pytest.mark.parametrize(
    "data",
    [[], {"email": "me@example.com"}],
    ids=["no-data", "no-id"],
)
async def test_a_profile_that_cannot_be_read_is_a_protocol_error(data: Any) -> None:
    async with client_for(json_reply(data)) as sms:
        with pytest.raises(aiosms.ProtocolError):
            await sms.profile()


def test_the_client_repr_names_the_account_and_not_the_password() -> None:
    sms = aiosms.ThousandSms(email="me@example.com", password=PASSWORD, sender="sms-tester")
    assert repr(sms) == (
        "ThousandSms(email='me@example.com', sender='sms-tester', format='json', "
        "method='POST', base_url='http://api.1000sms.ru/')"
    )
