"""Any bytes as a reply, to every call in both formats: a result or a typed error, nothing else.

A read gives its result, ``ProtocolError``, or (when the bytes happen to be a valid
refusal) a ``ProviderError``; a send gives a receipt, ``DeliveryUnknownError`` or a
``ProviderError``; ``send_many`` never raises at all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiosms

NO_RETRIES = aiosms.RetryPolicy(read_retries=0, send_retries=0)
MESSAGE = aiosms.Message(to="79160000000", text="Fuzz")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
keys = st.sampled_from(
    ["state", "data", "id", "balance", "msg", "err_code", "text", "type", "message", "credits"]
)
plausible_json = st.recursive(
    st.none() | st.integers(-60, 700).map(str) | st.integers(-60, 700) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
).map(lambda v: json.dumps(v).encode())


def _xml(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v, depth + 1)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(_xml(v, depth + 1) for v in value)
    return "" if value is None else str(value).replace("&", "&amp;").replace("<", "&lt;")


plausible_xml = st.recursive(
    st.none() | st.integers(-60, 700) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
).map(lambda v: f"<root>{_xml(v)}</root>".encode())

bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | plausible_json
    | plausible_xml
    | st.sampled_from([b"", b"<html><body>502</body></html>", b'{"state": "0"', b"<a><b>"])
)

Call = Callable[[Any], Awaitable[object]]
READS: dict[str, Call] = {
    "status": lambda sms: sms.status("4000001"),
    "status_many": lambda sms: sms.status_many(["4000001", "4000002"]),
    "balance": lambda sms: sms.balance(),
}
SENDS: dict[str, Call] = {"send": lambda sms: sms.send(MESSAGE)}
CLIENTS: dict[str, Callable[..., aiosms.MySms | aiosms.ThousandSms]] = {
    "my-sms": lambda **kw: aiosms.MySms(
        username="u", password="test-password", sender="MyShop", **kw
    ),
    "1000sms": lambda **kw: aiosms.ThousandSms(
        email="a@b.c", password="test-password", sender="sms-tester", **kw
    ),
}


def _run(gateway: str, fmt: str, backend: str, body: bytes, call: Call) -> object:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async def go() -> object:
        async with CLIENTS[gateway](
            format=fmt,
            base_url="http://fake.test/",
            http_transport=httpx.MockTransport(reply),
            retry=NO_RETRIES,
        ) as sms:
            return await call(sms)

    return anyio.run(go, backend=backend)


fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("gateway", list(CLIENTS))
@pytest.mark.parametrize("call", [*READS, "profile"])
@fuzz
@given(body=bodies)
def test_any_reply_to_a_read_is_a_result_or_a_typed_error(
    gateway: str, fmt: str, backend: str, call: str, body: bytes
) -> None:
    if call == "profile" and gateway != "1000sms":
        call = "balance"
    read = READS.get(call) or (lambda sms: sms.profile())
    outcome: object
    try:
        outcome = _run(gateway, fmt, backend, body, read)
    except (aiosms.ProtocolError, aiosms.ProviderError) as error:
        outcome = error
    if isinstance(outcome, aiosms.SmsError):
        assert outcome.may_have_been_sent is False
    else:
        expected = {
            "status": aiosms.StatusReport,
            "status_many": list,
            "balance": aiosms.Balance,
            "profile": aiosms.Profile,
        }[call]
        assert isinstance(outcome, expected)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("gateway", list(CLIENTS))
@fuzz
@given(body=bodies)
def test_any_reply_to_a_send_is_a_receipt_or_a_typed_error(
    gateway: str, fmt: str, backend: str, body: bytes
) -> None:
    outcome: object
    try:
        outcome = _run(gateway, fmt, backend, body, SENDS["send"])
    except (aiosms.DeliveryUnknownError, aiosms.ProviderError) as error:
        outcome = error
    if isinstance(outcome, aiosms.DeliveryUnknownError):
        assert outcome.messages == (MESSAGE,)
    elif isinstance(outcome, aiosms.ProviderError):
        assert outcome.may_have_been_sent is False
    else:
        assert isinstance(outcome, aiosms.Receipt)
        assert outcome.ok


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("gateway", list(CLIENTS))
@fuzz
@given(body=bodies)
def test_send_many_never_raises_whatever_the_reply(
    gateway: str, fmt: str, backend: str, body: bytes
) -> None:
    messages = [aiosms.Message(to="79160000000", text=f"m{i}", key=i) for i in range(3)]
    receipts = _run(gateway, fmt, backend, body, lambda sms: sms.send_many(messages))
    assert isinstance(receipts, list)
    assert [r.message.key for r in receipts] == [0, 1, 2]
    for receipt in receipts:
        if receipt.state is aiosms.DeliveryState.UNKNOWN:
            assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
        elif receipt.state is aiosms.DeliveryState.REJECTED:
            assert isinstance(receipt.error, aiosms.SmsError)
            assert receipt.error.may_have_been_sent is False
        else:
            assert receipt.error is None
