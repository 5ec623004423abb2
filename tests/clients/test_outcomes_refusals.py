"""A refusal is recognised from its code alone, whatever the rest of the reply holds.

The gateway's refusal code (my-sms's request ``state``, 1000sms's ``msg/err_code``)
decides; ``data``, ``balance``, ``msg/text`` and ``msg/type`` are read only after it,
and what they hold never turns a refusal into an unreadable reply or an unknown
outcome. The code → class tables are written from DESIGN.md, not read from the client.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import escape

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiosms
from aiosms import DeliveryState, Message
from aiosms.testing import FakeThousandSms

pytestmark = pytest.mark.anyio

NO_RETRIES = aiosms.RetryPolicy(read_retries=0, send_retries=0)
HI = Message(to="79160000000", text="Hi", key="hi")

#: my-sms request statuses the document lists as refusals, and their classes.
MYSMS_REFUSALS: dict[int, type[aiosms.SmsError]] = {
    -1: aiosms.AuthenticationError,
    -50: aiosms.GatewayError,
    -51: aiosms.GatewayError,
    -52: aiosms.GatewayError,
}
#: DESIGN.md: a gateway internal error in reply to a send may have sent it.
MYSMS_SEND_UNKNOWN = frozenset({-50, -51, -52})

#: Every documented 1000sms err_code but 602, and its class.
THOUSANDSMS_REFUSALS: dict[int, type[aiosms.ProviderError]] = {
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
#: 602's two documented meanings, told apart by the text.
USER_NOT_FOUND = "Пользователя не существует."
SMS_NOT_FOUND = "SMS не существует."


def replying(gateway: str, fmt: str, body: bytes) -> aiosms.MySms | aiosms.ThousandSms:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    options: dict[str, Any] = {
        "format": fmt,
        "base_url": "http://fake.test/",
        "http_transport": httpx.MockTransport(reply),
        "retry": NO_RETRIES,
    }
    if gateway == "my-sms":
        return aiosms.MySms(username="u", password="test-password", sender="MyShop", **options)
    return aiosms.ThousandSms(email="a@b.c", password="test-password", **options)


Call = Callable[[Any], Awaitable[object]]


async def outcome_of(sms: aiosms.MySms | aiosms.ThousandSms, call: Call) -> object:
    async with sms:
        try:
            return await call(sms)
        except aiosms.SmsError as error:
            return error


# -- the replies that used to hide their refusal --------------------------------------


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("json", b'{"state":"-1","balance":""}'),
        ("json", b'{"state":-1,"balance":{"x":[1]}}'),
        ("xml", b"<getBalance><state>-1</state><balance>n/a</balance></getBalance>"),
        ("xml", b"<getBalance><state>-1</state><balance><a>1</a></balance></getBalance>"),
    ],
)
async def test_a_refused_my_sms_balance_is_the_refusal_whatever_its_balance_field(
    fmt: str, body: bytes
) -> None:
    got = await outcome_of(replying("my-sms", fmt, body), lambda sms: sms.balance())
    assert isinstance(got, aiosms.AuthenticationError)
    assert got.code == -1


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("json", b'{"state":"-1","data":""}'),
        ("json", b'{"state":"-1","data":{"id":false}}'),
        ("xml", b"<checkSMS><state>-1</state><data>junk</data></checkSMS>"),
    ],
)
async def test_a_refused_my_sms_status_is_the_refusal_whatever_its_data(
    fmt: str, body: bytes
) -> None:
    got = await outcome_of(replying("my-sms", fmt, body), lambda sms: sms.status("abc"))
    assert isinstance(got, aiosms.AuthenticationError)


@pytest.mark.parametrize(
    "msg",
    [
        {"err_code": "2", "text": "Неверный логин и(или) пароль.", "type": False},
        {"err_code": 2, "text": ["?"], "type": None},
        {"err_code": "2", "text": False, "type": {"a": 1}},
    ],
)
async def test_a_1000sms_refusal_with_odd_text_or_type_is_the_refusal_for_every_call(
    msg: dict[str, Any],
) -> None:
    body = json.dumps({"msg": msg, "data": "nothing"}).encode()
    for call in (
        lambda sms: sms.send(HI),
        lambda sms: sms.status("4000001"),
        lambda sms: sms.profile(),
        lambda sms: sms.balance(),
    ):
        got = await outcome_of(replying("1000sms", "json", body), call)
        assert isinstance(got, aiosms.AuthenticationError)
        assert got.code == 2


async def test_a_wrong_1000sms_password_answered_oddly_stops_send_many_after_one_request() -> None:
    requests: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        msg = {"err_code": "2", "text": "Неверный логин и(или) пароль.", "type": False}
        return httpx.Response(200, content=json.dumps({"msg": msg, "data": []}).encode())

    messages = [Message(to="79160000000", text=f"m{i}", key=i) for i in range(20)]
    async with aiosms.ThousandSms(
        email="a@b.c",
        password="wrong",
        base_url="http://fake.test/",
        http_transport=httpx.MockTransport(reply),
        max_concurrency=1,
    ) as sms:
        receipts = await sms.send_many(messages)
    assert len(requests) == 1
    assert [r.message.key for r in receipts] == list(range(20))
    assert {r.state for r in receipts} == {DeliveryState.REJECTED}
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts)
    assert not any(r.error is not None and r.error.may_have_been_sent for r in receipts)


async def test_a_batcher_stops_at_an_oddly_answered_wrong_1000sms_password() -> None:
    fake = FakeThousandSms()
    fake_body = json.dumps(
        {"msg": {"err_code": 2, "text": None, "type": False}, "data": ""}
    ).encode()
    requests = 0

    def reply(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(200, content=fake_body)

    async with (
        aiosms.ThousandSms(
            email=fake.email,
            password="wrong",
            base_url="http://fake.test/",
            http_transport=httpx.MockTransport(reply),
        ) as sms,
        aiosms.Batcher(sms, max_concurrency=1) as batcher,
    ):
        messages = [Message(to="79160000000", text=f"m{i}", key=i) for i in range(10)]
        receipts = [r async for r in batcher.send_all(messages)]
    assert requests == 1
    assert len(receipts) == 10
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in receipts)
    assert all(r.state is DeliveryState.REJECTED for r in receipts)


@pytest.mark.parametrize(
    ("gateway", "body"),
    [
        ("my-sms", b'{"state":"-1","data":""}'),
        ("1000sms", b'{"msg":{"err_code":"2","text":"x","type":false},"data":""}'),
    ],
)
async def test_tracking_raises_a_refusal_hidden_in_an_odd_reply_instead_of_polling_on(
    gateway: str, body: bytes
) -> None:
    async with replying(gateway, "json", body) as sms, aiosms.Batcher(sms) as batcher:
        with anyio.fail_after(5), pytest.raises(aiosms.AuthenticationError):
            async for _ in batcher.track(["4000001"], interval=0.01, deadline=3):
                pass


# -- the property: every documented refusal, whatever else the reply holds ------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
_names = st.sampled_from(["state", "data", "msg", "err_code", "text", "type", "message", "id", "a"])
#: Characters XML 1.0 allows: no other control characters, surrogates or non-characters.
xml_chars = st.characters(exclude_categories=("Cc", "Cs", "Cn")) | st.sampled_from("\t\n\r")
xml_content = st.recursive(
    st.text(xml_chars, max_size=8).map(escape)
    | st.sampled_from(["", "<![CDATA[<x>]]>", "&amp;&lt;", "n/a", "-1", "77212,0000"]),
    lambda inner: (
        st.builds(
            lambda name, body: f"<{name}>{body}</{name}>" if body else f"<{name}/>", _names, inner
        )
        | st.lists(inner, max_size=3).map("".join)
    ),
    max_leaves=8,
)
#: A field holds any value, or is left out (this marker).
MISSING = object()


def json_body(head: dict[str, Any], others: dict[str, Any]) -> bytes:
    fields = {k: v for k, v in others.items() if v is not MISSING}
    return json.dumps({**head, **fields}, ensure_ascii=False).encode()


def xml_element(name: str, content: Any) -> str:
    return "" if content is MISSING else f"<{name}>{content}</{name}>"


property_settings = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def run(backend: str, sms: aiosms.MySms | aiosms.ThousandSms, call: str) -> list[object]:
    """The outcome of ``call``: for a send, the raised error and send_many's receipt error."""

    async def go() -> list[object]:
        async with sms:
            outcomes: list[object] = []
            try:
                if call == "send":
                    outcomes.append(await sms.send(HI))
                elif call == "status":
                    outcomes.append(await sms.status("4000001"))
                elif call == "balance":
                    outcomes.append(await sms.balance())
                else:
                    assert isinstance(sms, aiosms.ThousandSms)
                    outcomes.append(await sms.profile())
            except aiosms.SmsError as error:
                outcomes.append(error)
            if call == "send":
                (receipt,) = await sms.send_many([HI])
                outcomes.append(receipt.error)
            return outcomes

    return anyio.run(go, backend=backend)


backends = st.sampled_from(["asyncio", "trio"])
fields = json_values | st.just(MISSING)
xml_fields = xml_content | st.just(MISSING)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("call", ["send", "status", "balance"])
@pytest.mark.parametrize("code", sorted(MYSMS_REFUSALS))
@property_settings
@given(data=st.data(), backend=backends, as_text=st.booleans())
def test_every_my_sms_refusal_is_its_typed_error_whatever_the_other_fields_hold(
    code: int, call: str, fmt: str, data: st.DataObject, backend: str, as_text: bool
) -> None:
    other = "balance" if call == "balance" else "data"
    if fmt == "json":
        value = data.draw(fields, label=other)
        state = str(code) if as_text else code
        body = json_body({"state": state}, {other: value})
    else:
        content = data.draw(xml_fields, label=other)
        root = {"send": "sendSMS", "status": "checkSMS", "balance": "getBalance"}[call]
        body = f"<{root}><state>{code}</state>{xml_element(other, content)}</{root}>".encode()
    outcomes = run(backend, replying("my-sms", fmt, body), call)
    expected: type[aiosms.SmsError] = MYSMS_REFUSALS[code]
    if call == "send" and code in MYSMS_SEND_UNKNOWN:
        expected = aiosms.DeliveryUnknownError
    for outcome in outcomes:
        assert type(outcome) is expected
        if isinstance(outcome, aiosms.ProviderError):
            assert outcome.code == code
            assert outcome.may_have_been_sent is False


def _thousandsms_body(
    fmt: str, code: int, as_text: bool, text: Any, kind: Any, payload: Any
) -> bytes:
    if fmt == "json":
        msg = {"err_code": str(code) if as_text else code}
        msg.update({k: v for k, v in (("text", text), ("type", kind)) if v is not MISSING})
        return json_body({"msg": msg}, {"data": payload})
    msg_xml = f"<err_code>{code}</err_code>{xml_element('text', text)}{xml_element('type', kind)}"
    return f"<response><msg>{msg_xml}</msg>{xml_element('data', payload)}</response>".encode()


THOUSANDSMS_CALLS = ["send", "status", "balance", "profile"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("call", THOUSANDSMS_CALLS)
@pytest.mark.parametrize("code", sorted(THOUSANDSMS_REFUSALS))
@property_settings
@given(data=st.data(), backend=backends, as_text=st.booleans(), plain_text=st.booleans())
def test_every_1000sms_refusal_is_its_typed_error_whatever_the_other_fields_hold(
    code: int,
    call: str,
    fmt: str,
    data: st.DataObject,
    backend: str,
    as_text: bool,
    plain_text: bool,
) -> None:
    strategy = fields if fmt == "json" else xml_fields
    text = "Ошибка." if plain_text else data.draw(strategy, label="text")
    kind = data.draw(strategy, label="type")
    payload = data.draw(strategy, label="data")
    body = _thousandsms_body(fmt, code, as_text, text, kind, payload)
    outcomes = run(backend, replying("1000sms", fmt, body), call)
    for outcome in outcomes:
        assert type(outcome) is THOUSANDSMS_REFUSALS[code]
        assert isinstance(outcome, aiosms.ProviderError)
        assert outcome.code == code
        assert outcome.may_have_been_sent is False


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("call", THOUSANDSMS_CALLS)
@property_settings
@given(data=st.data(), backend=backends, documented_text=st.booleans())
def test_a_1000sms_602_is_one_of_its_two_meanings_whatever_the_other_fields_hold(
    call: str, fmt: str, data: st.DataObject, backend: str, documented_text: bool
) -> None:
    strategy = fields if fmt == "json" else xml_fields
    words = data.draw(st.sampled_from([USER_NOT_FOUND, SMS_NOT_FOUND]), label="words")
    text = words if documented_text else data.draw(strategy, label="text")
    body = _thousandsms_body(
        fmt, 602, False, text, data.draw(strategy, label="type"), data.draw(strategy)
    )
    outcomes = run(backend, replying("1000sms", fmt, body), call)
    for outcome in outcomes:
        assert isinstance(outcome, (aiosms.AuthenticationError, aiosms.MessageNotFoundError))
        assert outcome.code == 602
        if documented_text:
            meant = (
                aiosms.AuthenticationError
                if words == USER_NOT_FOUND
                else (aiosms.MessageNotFoundError)
            )
            assert type(outcome) is meant
