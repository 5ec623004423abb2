"""The gateway codecs without I/O: messages and reply bytes in, requests and models out.

Expected values come from the gateways' documents (``/providers``) and DESIGN.md:
my-sms state 2 → QUEUED, a decimal comma in its balance; 1000sms ``n_raw_sms``,
``credits`` per part, state 1 → DELIVERED, 602 told apart by its text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs

import cattrs
import pytest
from support import msg

import aiosms
from aiosms import DeliveryState, Message
from aiosms._codecs import loads_json, loads_xml
from aiosms._providers._mysms_codec import MySmsCodec
from aiosms._providers._thousandsms_codec import ThousandSmsCodec
from aiosms._secret import Secret
from aiosms._wire import STRUCTURE_ERRORS
from aiosms._wire import converter as shared_converter

PASSWORD = "codec-Pw-1"
TEXT = "Привет"


def mysms(**options: object) -> MySmsCodec:
    settings: dict[str, object] = {
        "base_url": "https://my-sms.ru/rest/sms/",
        "format": "json",
        "method": "POST",
        "username": "u",
        "password": Secret(PASSWORD),
        "sender": "MyShop",
    }
    settings.update(options)
    return MySmsCodec(**settings)  # type: ignore[arg-type]


def thousandsms(**options: object) -> ThousandSmsCodec:
    settings: dict[str, object] = {
        "base_url": "http://api.1000sms.ru/",
        "format": "json",
        "method": "POST",
        "email": "me@x.ru",
        "password": Secret(PASSWORD),
        "sender": "sms-tester",
    }
    settings.update(options)
    return ThousandSmsCodec(**settings)  # type: ignore[arg-type]


# --- my-sms: requests -------------------------------------------------------------------


def test_a_mysms_json_packet_is_the_documented_send_body() -> None:
    codec = mysms()
    messages = [msg(TEXT), msg("Hi", to="79112223334")]
    request = codec.send_request([codec.prepare(m) for m in messages])
    assert request.method == "POST"
    assert request.url == "https://my-sms.ru/rest/sms/send/json"
    assert request.headers == {"content-type": "application/json; charset=utf-8"}
    assert request.content is not None
    assert json.loads(request.content) == {
        "auth": {"username": "u", "password": PASSWORD},
        "data": [
            {"source": "MyShop", "destination": "79112223333", "text": "Привет"},
            {"source": "MyShop", "destination": "79112223334", "text": "Hi"},
        ],
    }


def test_a_mysms_xml_packet_is_the_documented_send_body() -> None:
    codec = mysms(format="xml")
    request = codec.send_request([codec.prepare(msg(TEXT))])
    assert request.url == "https://my-sms.ru/rest/sms/send/xml"
    assert request.content is not None
    assert loads_xml(request.content) == {
        "auth": {"username": "u", "password": PASSWORD},
        "data": {"message": {"source": "MyShop", "destination": "79112223333", "text": "Привет"}},
    }


def test_a_mysms_get_send_carries_the_documented_query() -> None:
    codec = mysms(method="GET")
    request = codec.send_request([codec.prepare(msg(TEXT))])
    assert request.method == "GET"
    assert request.url == "https://my-sms.ru/rest/sms/send/json"
    assert request.params == {
        "u": "u",
        "p": PASSWORD,
        "s": "MyShop",
        "d": "79112223333",
        "t": "Привет",
    }


def test_a_mysms_schedule_is_sent_in_moscow_time_in_the_documented_format() -> None:
    from datetime import datetime, timezone

    codec = mysms()
    at = datetime(2030, 1, 2, 9, 30, tzinfo=timezone.utc)
    wire = codec.prepare(Message(to="79112223333", text="x", at=at, ttl=60))
    request = codec.send_request([wire])
    assert request.content is not None
    (entry,) = json.loads(request.content)["data"]
    assert entry["date"] == "02.01.2030 12:30:00"
    assert entry["ttl"] == "60"


def test_a_mysms_message_without_any_sender_is_refused_before_a_request() -> None:
    with pytest.raises(aiosms.ValidationError) as refused:
        mysms(sender=None).prepare(msg(TEXT))
    assert refused.value.field == "sender"


def test_a_mysms_status_packet_and_balance_request_are_the_documented_bodies() -> None:
    codec = mysms()
    status = codec.status_request(["a", "b"])
    assert status.url.endswith("/status/json")
    assert status.content is not None
    assert loads_json(status.content) == {
        "auth": {"username": "u", "password": PASSWORD},
        "data": [{"id": "a"}, {"id": "b"}],
    }
    balance = codec.balance_request()
    assert balance.url.endswith("/credit/json")
    assert balance.content is not None
    assert loads_json(balance.content) == {"auth": {"username": "u", "password": PASSWORD}}


def test_a_mysms_codec_never_shows_its_password() -> None:
    codec = mysms()
    request = codec.send_request([codec.prepare(msg(TEXT))])
    assert PASSWORD not in repr(codec)
    assert PASSWORD not in repr(request)


# --- my-sms: replies --------------------------------------------------------------------


def test_the_documented_mysms_send_reply_becomes_a_queued_receipt() -> None:
    body = b'{"state": "0", "data": [{"id": "e061d23c-34dc-4903-88f0-e6a6f5f3a570", "state": "2"}]}'
    (receipt,) = mysms(price=Decimal("2.5")).parse_send(body, [msg(TEXT)], [])
    assert receipt.message_id == "e061d23c-34dc-4903-88f0-e6a6f5f3a570"
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.error is None
    assert receipt.parts == 1
    assert receipt.cost == Decimal("2.5")
    assert receipt.sender == "MyShop"


def test_the_documented_mysms_xml_send_reply_becomes_a_queued_receipt() -> None:
    body = (
        b'<sendSMS xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><state>0</state>'
        b"<data><message><id>e061d23c</id><state>2</state></message></data></sendSMS>"
    )
    (receipt,) = mysms(format="xml").parse_send(body, [msg(TEXT)], [])
    assert (receipt.message_id, receipt.state) == ("e061d23c", DeliveryState.QUEUED)


def test_a_refused_message_in_a_mysms_packet_does_not_fail_the_others() -> None:
    body = b'{"state": "0", "data": [{"id": "a", "state": "2"}, {"id": "", "state": "-12"}]}'
    ok, refused = mysms().parse_send(body, [msg(TEXT), msg(TEXT, to="79112223334")], [])
    assert ok.state is DeliveryState.QUEUED
    assert refused.state is DeliveryState.REJECTED
    assert refused.message_id is None
    assert isinstance(refused.error, aiosms.RecipientError)
    assert refused.error.code == -12


def test_a_mysms_reply_of_the_wrong_length_is_an_unknown_outcome() -> None:
    body = b'{"state": "0", "data": [{"id": "a", "state": "2"}]}'
    with pytest.raises(aiosms.DeliveryUnknownError) as unknown:
        mysms().parse_send(body, [msg(TEXT), msg(TEXT, to="79112223334")], [])
    assert len(unknown.value.messages) == 2


def test_a_mysms_request_refusal_raises_its_typed_error_and_an_internal_error_is_unknown() -> None:
    with pytest.raises(aiosms.AuthenticationError):
        mysms().parse_send(b'{"state": "-1", "data": null}', [msg(TEXT)], [])
    with pytest.raises(aiosms.DeliveryUnknownError):
        mysms().parse_send(b'{"state": "-50"}', [msg(TEXT)], [])


def test_an_unreadable_mysms_send_reply_is_an_unknown_outcome() -> None:
    with pytest.raises(aiosms.DeliveryUnknownError):
        mysms().parse_send(b"<html>502</html>", [msg(TEXT)], [])


def test_mysms_status_reports_are_matched_by_id_not_by_position() -> None:
    body = b'{"state": "0", "data": [{"id": "b", "state": "4"}, {"id": "a", "state": "3"}]}'
    a, b = mysms().parse_status(body, ["a", "b"])
    assert (a.message_id, a.state, a.code) == ("a", DeliveryState.SENT, 3)
    assert (b.message_id, b.state, b.code) == ("b", DeliveryState.DELIVERED, 4)


def test_a_mysms_status_of_an_unknown_id_is_rejected_with_its_error() -> None:
    body = b'{"state": "0", "data": [{"id": "a", "state": "-10"}]}'
    (report,) = mysms().parse_status(body, ["a"])
    assert report.state is DeliveryState.REJECTED
    assert isinstance(report.error, aiosms.MessageNotFoundError)


def test_the_documented_mysms_balance_reads_its_decimal_comma() -> None:
    balance = mysms().parse_balance(b'{"state": "0", "balance": "77212,0000"}')
    assert balance.amount == Decimal("77212.0000")
    xml = b"<getBalance><state>0</state><balance>77212,0000</balance></getBalance>"
    assert mysms(format="xml").parse_balance(xml).amount == Decimal("77212.0000")


def test_an_unreadable_mysms_balance_is_a_protocol_error() -> None:
    with pytest.raises(aiosms.ProtocolError):
        mysms().parse_balance(b'{"state": "0", "balance": "lots"}')


# --- 1000sms: requests ------------------------------------------------------------------


def test_a_1000sms_push_is_a_form_post_with_the_documented_fields() -> None:
    codec = thousandsms()
    request = codec.send_request([codec.prepare(msg("Hi", to="79160000000"))])
    assert request.method == "POST"
    assert request.url == "http://api.1000sms.ru/"
    assert request.content is not None
    assert parse_qs(request.content.decode()) == {
        "method": ["push_msg"],
        "email": ["me@x.ru"],
        "password": [PASSWORD],
        "format": ["json"],
        "phone": ["79160000000"],
        "text": ["Hi"],
        "sender_name": ["sms-tester"],
    }


def test_a_1000sms_get_carries_the_method_and_the_format_in_the_query() -> None:
    request = thousandsms(method="GET", format="xml").status_request(["42"])
    assert request.method == "GET"
    assert request.params == {
        "method": "get_msg_report",
        "email": "me@x.ru",
        "password": PASSWORD,
        "id": "42",
        "format": "xml",
    }


def test_a_1000sms_message_without_a_sender_goes_under_the_accounts_own() -> None:
    wire = thousandsms(sender=None).prepare(msg("Hi", to="79160000000"))
    assert "sender_name" not in wire


@pytest.mark.parametrize("field", ["at", "ttl"])
def test_a_1000sms_schedule_or_ttl_is_refused_before_a_request(field: str) -> None:
    from datetime import datetime, timezone

    options: dict[str, object] = {
        "at": datetime(2030, 1, 1, tzinfo=timezone.utc),
        "ttl": 60,
    }
    message = Message(to="79160000000", text="Hi", **{field: options[field]})  # type: ignore[arg-type]
    with pytest.raises(aiosms.ValidationError) as refused:
        thousandsms().prepare(message)
    assert refused.value.field == field


def test_a_1000sms_codec_never_shows_its_password_even_after_encoding_a_form() -> None:
    codec = thousandsms()
    request = codec.profile_request()
    assert request.content is not None
    assert PASSWORD not in repr(codec)
    assert PASSWORD not in repr(request)


# --- 1000sms: replies -------------------------------------------------------------------


def test_a_1000sms_push_reply_gives_the_id_parts_and_cost_per_part_times_parts() -> None:
    body = (
        b'{"msg": {"err_code": "0", "text": "OK", "type": "message"},'
        b' "data": {"id": "901", "credits": "1.50", "n_raw_sms": "2", "sender_name": "sms-tester"}}'
    )
    message = msg("Hi", to="79160000000")
    (receipt,) = thousandsms().parse_send(body, [message], [{"sender_name": "sms-tester"}])
    assert receipt.message_id == "901"
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.parts == 2
    assert receipt.cost == Decimal("3.00")
    assert receipt.sender == "sms-tester"


def test_a_1000sms_refusal_of_a_push_raises_its_typed_error() -> None:
    body = '{"msg": {"err_code": "618", "text": "Номер Абонента в Черном списке."}}'.encode()
    with pytest.raises(aiosms.BlacklistedError) as refused:
        thousandsms().parse_send(body, [msg("Hi", to="79160000000")], [{}])
    assert refused.value.code == 618


def test_a_1000sms_push_reply_without_an_id_is_an_unknown_outcome() -> None:
    body = b'{"msg": {"err_code": "0"}, "data": {"n_raw_sms": "1"}}'
    with pytest.raises(aiosms.DeliveryUnknownError):
        thousandsms().parse_send(body, [msg("Hi", to="79160000000")], [{}])


def test_a_1000sms_report_keeps_the_senders_user_id_apart_from_the_message_id() -> None:
    body = (
        "<data><msg><err_code>0</err_code><text>OK</text></msg><data><id>77</id>"
        "<state>1</state><state_text>Доставлено</state_text><type>1</type>"
        "<n_raw_sms>1</n_raw_sms><credits>1.20</credits></data></data>"
    ).encode()
    (report,) = thousandsms(format="xml").parse_status(body, ["901"])
    assert report.message_id == "901"
    assert report.user_id == "77"
    assert report.state is DeliveryState.DELIVERED
    assert report.code == 1
    assert report.flash is False
    assert report.price_per_part == Decimal("1.20")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SMS не существует.", aiosms.MessageNotFoundError),
        ("Пользователя не существует.", aiosms.AuthenticationError),
    ],
)
def test_1000sms_602_is_told_apart_by_its_text(text: str, error: type[Exception]) -> None:
    body = json.dumps({"msg": {"err_code": 602, "text": text}}).encode()
    with pytest.raises(error):
        thousandsms().parse_status(body, ["901"])


def test_a_1000sms_profile_reads_every_documented_field() -> None:
    body = json.dumps(
        {
            "msg": {"err_code": "0"},
            "data": {
                "id": "77",
                "email": "me@x.ru",
                "first_name": "Ivan",
                "last_name": "Petrov",
                "credits": "100.50",
                "credits_used": "9.50",
                "credits_name": "руб.",
                "currency": "руб.",
                "sender_name": "sms-tester",
                "referral_id": "5",
            },
        }
    ).encode()
    profile = thousandsms().parse_profile(body)
    assert profile.id == "77"
    assert profile.email == "me@x.ru"
    assert (profile.first_name, profile.last_name) == ("Ivan", "Petrov")
    assert (profile.credits, profile.credits_used) == (Decimal("100.50"), Decimal("9.50"))
    assert (profile.credits_name, profile.currency) == ("руб.", "руб.")
    assert (profile.sender, profile.referral_id) == ("sms-tester", "5")


# --- converters -------------------------------------------------------------------------


def test_no_codec_registers_a_hook_on_the_shared_converter() -> None:
    from aiosms._providers._mysms_codec import _Entry

    # Importing the codecs (above) left the shared converter as it was made: it
    # knows nothing of my-sms's reply entries.
    with pytest.raises((*STRUCTURE_ERRORS, cattrs.errors.StructureHandlerNotFoundError)):
        shared_converter.structure([{"state": "2", "id": "a"}], list[_Entry])
