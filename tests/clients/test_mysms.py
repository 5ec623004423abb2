"""MySms against the fake my-sms gateway: every call, format and verb, codes and packets."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from support import msg

import aiosms
from aiosms import DeliveryState
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)

FORMATS = ["json", "xml"]
METHODS = ["POST", "GET"]
NO_RETRY_DELAY = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verb", METHODS)
async def test_send_status_and_balance_work_in_every_format_and_verb(
    fake_mysms: FakeMySms, fmt: str, verb: str
) -> None:
    async with fake_mysms.client(sender="MyShop", format=fmt, method=verb) as sms:
        receipt = await sms.send(msg(to="+7 (911) 222-33-33", text="Привет"))
        first = await sms.status(receipt.message_id or "")
        second = await sms.status(receipt.message_id or "")
        third = await sms.status(receipt.message_id or "")
        balance = await sms.balance()
    (entry,) = fake_mysms.ledger
    assert (entry.phone, entry.sender, entry.text) == ("79112223333", "MyShop", "Привет")
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.code == 2
    assert receipt.sender == "MyShop"
    assert receipt.parts == 1
    assert [first.state, second.state, third.state] == [
        DeliveryState.QUEUED,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
    ]
    assert third.state.is_final
    # 1000 on the account, one single-part message at 1.5.
    assert balance == aiosms.Balance(Decimal("998.5"), None)
    assert {(c.method, c.format) for c in fake_mysms.calls} == {(verb, fmt)}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verb", METHODS)
async def test_send_many_and_status_many_work_in_every_format_and_verb(
    fake_mysms: FakeMySms, fmt: str, verb: str
) -> None:
    messages = [msg(to=f"7911000000{i}", text=f"text {i}", key=i) for i in range(5)]
    async with fake_mysms.client(sender="MyShop", format=fmt, method=verb) as sms:
        receipts = await sms.send_many(messages)
        ids = [r.message_id or "" for r in receipts]
        reports = await sms.status_many([*ids, "no-such-id"])
    assert [r.message.key for r in receipts] == [0, 1, 2, 3, 4]
    by_id = {e.id: e for e in fake_mysms.ledger}
    assert [by_id[i].text for i in ids] == [f"text {i}" for i in range(5)]
    assert [r.message_id for r in reports] == [*ids, "no-such-id"]
    assert [r.state for r in reports[:5]] == [DeliveryState.QUEUED] * 5
    assert reports[5].state is DeliveryState.REJECTED
    assert isinstance(reports[5].error, aiosms.MessageNotFoundError)
    assert reports[5].error.code == -10
    expected_send_requests = 1 if verb == "POST" else 5
    assert len(fake_mysms.calls_to("send")) == expected_send_requests


async def test_the_documented_wire_shape_is_sent_for_a_json_post_packet() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/rest/sms/send/json"
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        reply = {"state": "0", "data": [{"id": "a", "state": "2"}, {"id": "b", "state": "2"}]}
        return httpx.Response(200, json=reply)

    at = datetime(2027, 2, 1, 10, 0, 0)
    async with aiosms.MySms(
        username="test-user",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(handler),
    ) as sms:
        await sms.send_many([msg(text="one", at=at, ttl=60), msg(to="79110000000", text="two")])
    assert seen == [
        {
            "auth": {"username": "test-user", "password": "test-password"},
            "data": [
                {
                    "source": "MyShop",
                    "destination": "79112223333",
                    "text": "one",
                    "date": "01.02.2027 10:00:00",
                    "ttl": "60",
                },
                {"source": "MyShop", "destination": "79110000000", "text": "two"},
            ],
        }
    ]


async def test_an_aware_schedule_is_sent_in_moscow_time(fake_mysms: FakeMySms) -> None:
    at = datetime(2027, 2, 1, 7, 30, tzinfo=timezone.utc)
    async with fake_mysms.client(sender="MyShop") as sms:
        await sms.send(msg(at=at, ttl=3600))
    assert fake_mysms.ledger[0].date == "01.02.2027 10:30:00"
    assert fake_mysms.ledger[0].ttl == "3600"


async def test_another_zone_is_converted_to_moscow_time(fake_mysms: FakeMySms) -> None:
    vladivostok = timezone(timedelta(hours=10))
    async with fake_mysms.client(sender="MyShop", format="xml", method="GET") as sms:
        await sms.send(msg(at=datetime(2027, 2, 1, 17, 0, tzinfo=vladivostok)))
    assert fake_mysms.ledger[0].date == "01.02.2027 10:00:00"


# -- documented codes -------------------------------------------------------------------

MESSAGE_CODES = [
    (-11, aiosms.SenderError),
    (-12, aiosms.RecipientError),
    (-13, aiosms.InsufficientFundsError),
    (-14, aiosms.GatewayError),
    (-15, aiosms.ScheduleError),
    (-16, aiosms.ScheduleError),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("code", "error_class"), MESSAGE_CODES)
async def test_each_documented_message_code_raises_its_error_class_on_send(
    fake_mysms: FakeMySms, fmt: str, code: int, error_class: type[aiosms.ProviderError]
) -> None:
    fake_mysms.reject_number("79112223333", code)
    async with fake_mysms.client(sender="MyShop", format=fmt) as sms:
        with pytest.raises(error_class) as caught:
            await sms.send(msg())
    assert caught.value.code == code
    assert caught.value.provider == "my-sms"
    assert caught.value.may_have_been_sent is False
    assert fake_mysms.ledger == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verb", METHODS)
async def test_a_wrong_password_is_an_authentication_error_on_every_call(
    fmt: str, verb: str
) -> None:
    fake = FakeMySms()
    async with fake.client(sender="MyShop", format=fmt, method=verb, password="wrong") as sms:
        for call in (sms.send(msg()), sms.status("some-id"), sms.balance()):
            with pytest.raises(aiosms.AuthenticationError) as caught:
                await call
            assert caught.value.code == -1
    assert fake.ledger == []


async def test_an_unknown_id_is_message_not_found_on_status(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client() as sms:
        with pytest.raises(aiosms.MessageNotFoundError) as caught:
            await sms.status("no-such-id")
    assert caught.value.code == -10


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_internal_error_in_reply_to_a_send_is_an_unknown_outcome(
    fake_mysms: FakeMySms, fmt: str
) -> None:
    fake_mysms.faults.add(Fault.internal_error(), endpoint="send")
    message = msg()
    async with fake_mysms.client(sender="MyShop", format=fmt) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(message)
    assert caught.value.may_have_been_sent is True
    assert caught.value.messages == (message,)
    assert fake_mysms.received["send"] == 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_internal_errors_on_reads_are_retried_then_raised_as_gateway_errors(
    fake_mysms: FakeMySms, fmt: str
) -> None:
    fake_mysms.faults.add(Fault.internal_error(), times=3, endpoint="credit")
    async with fake_mysms.client(format=fmt, retry=NO_RETRY_DELAY) as sms:
        with pytest.raises(aiosms.GatewayError) as caught:
            await sms.balance()
        assert caught.value.code == -50
        fake_mysms.faults.add(Fault.internal_error(), times=2, endpoint="credit")
        assert (await sms.balance()).amount == Decimal("1000")
    assert fake_mysms.received["credit"] == 3 + 3


# -- packets ----------------------------------------------------------------------------


async def test_a_rejected_message_in_a_packet_does_not_fail_the_others(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.reject_number("79110000001", -12)
    messages = [msg(to=f"7911000000{i}", text=f"m{i}") for i in range(3)]
    async with fake_mysms.client(sender="MyShop") as sms:
        receipts = await sms.send_many(messages)
    assert [r.state for r in receipts] == [
        DeliveryState.QUEUED,
        DeliveryState.REJECTED,
        DeliveryState.QUEUED,
    ]
    assert isinstance(receipts[1].error, aiosms.RecipientError)
    assert receipts[1].message_id is None
    assert receipts[0].error is None
    assert receipts[2].error is None
    assert [e.text for e in fake_mysms.ledger] == ["m0", "m2"]
    assert len(fake_mysms.calls_to("send")) == 1


async def test_2500_messages_go_in_3_packets_with_receipts_in_order() -> None:
    fake = FakeMySms(balance=Decimal(10_000))
    messages = [msg(to=f"79{i:09d}", text=f"m{i}", key=i) for i in range(2500)]
    async with fake.client(sender="MyShop", packet_size=1000) as sms:
        receipts = await sms.send_many(messages)
    assert sorted(c.messages for c in fake.calls_to("send")) == [500, 1000, 1000]
    by_id = {e.id: e for e in fake.ledger}
    assert len(by_id) == 2500
    for i, receipt in enumerate(receipts):
        assert receipt.message.key == i
        entry = by_id[receipt.message_id or ""]
        assert (entry.text, entry.phone) == (f"m{i}", f"79{i:09d}")


async def test_a_reply_of_the_wrong_length_makes_the_whole_packet_unknown(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.wrong_count(), endpoint="send")
    messages = [msg(text=f"m{i}") for i in range(3)]
    async with fake_mysms.client(sender="MyShop") as sms:
        receipts = await sms.send_many(messages)
    assert [r.state for r in receipts] == [DeliveryState.UNKNOWN] * 3
    assert all(isinstance(r.error, aiosms.DeliveryUnknownError) for r in receipts)
    assert all(r.message_id is None for r in receipts)
    # Each message owns its error: no object shared between receipts.
    assert len({id(r.error) for r in receipts}) == 3


async def test_send_many_attaches_invalid_input_and_sends_the_rest(
    fake_mysms: FakeMySms,
) -> None:
    messages = [msg(text="ok"), msg(text="bad sender", sender="Кириллица"), msg(text="ok2")]
    async with fake_mysms.client(sender="MyShop") as sms:
        receipts = await sms.send_many(messages)
    assert [r.state for r in receipts] == [
        DeliveryState.QUEUED,
        DeliveryState.REJECTED,
        DeliveryState.QUEUED,
    ]
    assert isinstance(receipts[1].error, aiosms.ValidationError)
    assert receipts[1].error.field == "sender"
    assert [e.text for e in fake_mysms.ledger] == ["ok", "ok2"]


async def test_insufficient_funds_stops_the_packets_not_yet_sent() -> None:
    fake = FakeMySms(balance=Decimal("3"), price=Decimal("1"))
    messages = [msg(text=f"m{i}") for i in range(10)]
    async with fake.client(sender="MyShop", packet_size=5, max_concurrency=1) as sms:
        receipts = await sms.send_many(messages)
    assert [r.state for r in receipts[:3]] == [DeliveryState.QUEUED] * 3
    assert all(r.state is DeliveryState.REJECTED for r in receipts[3:])
    assert all(isinstance(r.error, aiosms.InsufficientFundsError) for r in receipts[3:])
    assert all(r.error is not None and not r.error.may_have_been_sent for r in receipts[3:])
    # The second packet never went out.
    assert len(fake.calls_to("send")) == 1
    assert len(fake.ledger) == 3


async def test_send_many_with_a_wrong_password_fails_every_message_as_not_sent() -> None:
    fake = FakeMySms()
    async with fake.client(sender="MyShop", password="wrong", packet_size=2) as sms:
        receipts = await sms.send_many([msg(text=str(i)) for i in range(6)])
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts)
    assert all(r.state is DeliveryState.REJECTED for r in receipts)


async def test_status_many_goes_in_packets_and_matches_replies_by_id() -> None:
    fake_mysms = FakeMySms(balance=Decimal(10_000))
    async with fake_mysms.client(sender="MyShop", packet_size=100) as sms:
        receipts = await sms.send_many([msg(text=f"m{i}") for i in range(250)])
        ids = [r.message_id or "" for r in receipts]
        fake_mysms.set_state(ids[7], 4)
        reports = await sms.status_many(reversed(ids))
    assert [c.messages for c in fake_mysms.calls_to("status")] == [100, 100, 50]
    assert [r.message_id for r in reports] == list(reversed(ids))
    delivered = [r.message_id for r in reports if r.state is DeliveryState.DELIVERED]
    assert delivered == [ids[7]]


async def test_a_status_reply_under_another_root_is_read_alike() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = (
            b'<?xml version="1.0"?><anything xmlns:i="x"><state>0</state><unknown>1</unknown>'
            b"<data><message><id>abc</id><state>3</state><extra/></message></data></anything>"
        )
        return httpx.Response(200, content=body)

    async with aiosms.MySms(
        username="u",
        password="test-password",
        format="xml",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(handler),
    ) as sms:
        report = await sms.status("abc")
    assert (report.message_id, report.state, report.code) == ("abc", DeliveryState.SENT, 3)


async def test_a_decimal_comma_balance_becomes_a_decimal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"state": "0", "balance": "77212,0000"})

    async with aiosms.MySms(
        username="u",
        password="test-password",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(handler),
    ) as sms:
        balance = await sms.balance()
    assert balance == aiosms.Balance(Decimal("77212.0000"), None)


# -- validation before the wire ---------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "client_sender", "field"),
    [
        (lambda: msg(), None, "sender"),
        (lambda: msg(sender="TooLongSenderName"), None, "sender"),
        (lambda: msg(sender="Магазин"), None, "sender"),
        (lambda: msg(sender="1234567890123456"), None, "sender"),
    ],
)
async def test_bad_input_raises_before_any_request(
    fake_mysms: FakeMySms, message: object, client_sender: str | None, field: str
) -> None:
    async with fake_mysms.client(sender=client_sender) as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            await sms.send(message())  # type: ignore[operator]
    assert caught.value.field == field
    assert sum(fake_mysms.received.values()) == 0


async def test_a_bad_client_sender_is_refused_at_construction(fake_mysms: FakeMySms) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        fake_mysms.client(sender="ThisIsTooLong")
    assert caught.value.field == "sender"


@pytest.mark.parametrize(
    ("option", "value"),
    [("format", "yaml"), ("method", "PUT"), ("packet_size", 0), ("max_concurrency", 0)],
)
async def test_bad_client_options_name_the_option(option: str, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.MySms(username="u", password="p", **{option: value})  # type: ignore[arg-type]
    assert caught.value.field == option


async def test_a_numeric_sender_of_15_digits_is_accepted(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client() as sms:
        receipt = await sms.send(msg(sender="123456789012345"))
    assert receipt.sender == "123456789012345"
    assert fake_mysms.ledger[0].sender == "123456789012345"


def test_format_and_method_are_fixed_once_the_client_is_built() -> None:
    sms = aiosms.MySms(username="u", password="fake-password", format="xml", method="GET")
    assert (sms.format, sms.method) == ("xml", "GET")
    with pytest.raises(AttributeError):
        sms.format = "json"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sms.method = "POST"  # type: ignore[misc]


# -- odd replies ------------------------------------------------------------------------


def mysms_replying(body: bytes, **options: Any) -> aiosms.MySms:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    return aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(reply),
        retry=FAST,
        **options,
    )


async def test_a_refusal_with_null_data_is_the_typed_refusal_not_an_unknown_outcome() -> None:
    async with mysms_replying(b'{"state": "-1", "data": null}') as sms:
        with pytest.raises(aiosms.AuthenticationError):
            await sms.send(msg())
        with pytest.raises(aiosms.AuthenticationError):
            await sms.status("abc")


async def test_status_replies_in_another_order_are_matched_by_id() -> None:
    body = b'{"state":"0","data":[{"id":"b","state":"4"},{"id":"a","state":"2"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
    assert [(r.message_id, r.state) for r in reports] == [
        ("a", DeliveryState.QUEUED),
        ("b", DeliveryState.DELIVERED),
    ]


async def test_a_status_entry_for_an_id_not_asked_about_is_never_used() -> None:
    body = b'{"state":"0","data":[{"id":"x","state":"4"},{"id":"y","state":"4"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
        with pytest.raises(aiosms.ProtocolError):
            await sms.status("a")
    assert [r.state for r in reports] == [DeliveryState.UNKNOWN, DeliveryState.UNKNOWN]
    assert all(isinstance(r.error, aiosms.ProtocolError) for r in reports)


async def test_a_status_entry_with_a_blank_id_is_matched_by_position_when_counts_agree() -> None:
    body = b'{"state":"0","data":[{"id":"a","state":"3"},{"id":"","state":"-10"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
    assert [r.state for r in reports] == [DeliveryState.SENT, DeliveryState.REJECTED]
    assert isinstance(reports[1].error, aiosms.MessageNotFoundError)


async def test_a_json_reply_with_a_byte_order_mark_is_read() -> None:
    body = '\ufeff{"state":"0","data":[{"id":"a","state":"2"}]}'.encode()
    async with mysms_replying(body) as sms:
        receipt = await sms.send(msg())
    assert receipt.message_id == "a"


async def test_a_reply_whose_compression_is_broken_is_an_unknown_outcome_on_a_send() -> None:
    calls: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, content=b"not gzip", headers={"content-encoding": "gzip"})

    async with aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(reply),
        retry=FAST,
        method="GET",
    ) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as read_error:
            await sms.balance()
    assert send_error.value.kind == "DecodingError"
    assert read_error.value.kind == "DecodingError"
    # Sent once; the read was retried.
    assert calls.count("/rest/sms/send/json") == 1
    assert calls.count("/rest/sms/credit/json") == 3
    # Nothing of the request (whose GET URL holds the password) rides on the error.
    assert "test-password" not in repr(vars(send_error.value))
    assert send_error.value.__cause__ is None
    assert send_error.value.__context__ is None
    assert gzip  # the body above is deliberately not gzip


async def test_a_price_gives_receipts_a_cost_of_price_times_parts(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client(sender="MyShop", price=Decimal("2.10")) as sms:
        short = await sms.send(msg("Hi"))
        long = await sms.send(msg("Ж" * 150))
    assert short.cost == Decimal("2.10")
    assert long.cost == Decimal("6.30")


async def test_a_refusal_of_the_whole_request_decides_even_when_its_data_is_junk() -> None:
    # The request status is the gateway's answer for the packet; entries it cannot
    # have processed do not make the refusal an unknown outcome.
    async with mysms_replying(b'{"state": "-13", "data": "junk"}') as sms:
        with pytest.raises(aiosms.InsufficientFundsError) as refused:
            await sms.send(msg())
    assert refused.value.may_have_been_sent is False


async def test_one_unreadable_entry_makes_the_whole_accepted_packet_unknown() -> None:
    body = b'{"state":"0","data":[{"id":"a","state":"2"},{"id":"b"},{"id":"c","state":"2"}]}'
    async with mysms_replying(body) as sms:
        receipts = await sms.send_many([msg("one"), msg("two"), msg("three")])
    assert [r.state for r in receipts] == [DeliveryState.UNKNOWN] * 3
    assert all(isinstance(r.error, aiosms.DeliveryUnknownError) for r in receipts)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_packet_mixing_message_and_client_senders_carries_each_exactly(
    fmt: str,
) -> None:
    fake = FakeMySms(senders=["MyShop", 'Say "Hi"', "O'Hara"])
    senders = [None, 'Say "Hi"', None, "O'Hara", "MyShop"]
    messages = [msg(f"text {n}", sender=s) for n, s in enumerate(senders)]
    async with fake.client(sender="MyShop", format=fmt) as sms:
        receipts = await sms.send_many(messages)
    expected = [s or "MyShop" for s in senders]
    assert [r.sender for r in receipts] == expected
    assert [(e.sender, e.text) for e in fake.ledger] == [
        (s, f"text {n}") for n, s in enumerate(expected)
    ]
