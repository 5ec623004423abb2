"""1000sms's form bodies: byte for byte what the standard form encoding gives."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from aiosms import Message
from aiosms._providers._thousandsms_codec import ThousandSmsCodec
from aiosms._secret import Secret

PASSWORD = "p&ss word+=1"


def codec() -> ThousandSmsCodec:
    return ThousandSmsCodec(
        base_url="http://api.1000sms.ru/",
        format="json",
        method="POST",
        email="me+sms@x.ru",
        password=Secret(PASSWORD),
        sender="sms-tester",
    )


@pytest.mark.parametrize(
    "text",
    ["Hi", "Привет & пока", "a+b=c d%20e", "emoji \U0001f600 / ? # ~", "line\nbreak\t"],
)
def test_a_push_body_is_the_standard_form_encoding_of_its_fields(text: str) -> None:
    gateway = codec()
    request = gateway.send_request([gateway.prepare(Message(to="79160000000", text=text))])
    expected = urlencode(
        {
            "method": "push_msg",
            "email": "me+sms@x.ru",
            "password": PASSWORD,
            "format": "json",
            "phone": "79160000000",
            "text": text,
            "sender_name": "sms-tester",
        }
    )
    assert request.content == expected.encode("ascii")


def test_every_push_of_a_codec_carries_its_own_message_and_the_same_credentials() -> None:
    gateway = codec()
    bodies = [
        gateway.send_request([gateway.prepare(Message(to="79160000000", text=text))]).content
        for text in ("one", "two")
    ]
    prefix = urlencode(
        {"method": "push_msg", "email": "me+sms@x.ru", "password": PASSWORD, "format": "json"}
    ).encode("ascii")
    assert [body.removeprefix(prefix) for body in bodies if body is not None] == [
        b"&phone=79160000000&text=one&sender_name=sms-tester",
        b"&phone=79160000000&text=two&sender_name=sms-tester",
    ]


def test_a_call_without_arguments_sends_only_the_constant_fields() -> None:
    request = codec().profile_request()
    assert request.content == urlencode(
        {"method": "get_profile", "email": "me+sms@x.ru", "password": PASSWORD, "format": "json"}
    ).encode("ascii")
