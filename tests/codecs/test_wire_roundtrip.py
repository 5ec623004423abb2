"""Round trips of the wire mapping: what a client sends is what the gateway reads.

Any sendable text and any valid number go through every gateway, format and verb to
the fake gateway, whose ledger must hold them exactly; and the receipt's id is the
one the gateway gave.
"""

from __future__ import annotations

import anyio
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import aiosms
from aiosms.testing import FakeMySms, FakeThousandSms

texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=80
) | st.sampled_from(
    ["  padded  ", "a\r\nb", "<tag>&amp;</tag>", "100% \"quoted\" 'x'", "€{}[]~|^\\"]
)
numbers = st.from_regex(r"7[0-9]{10}", fullmatch=True)


def _message(text: str, number: str) -> aiosms.Message:
    try:
        return aiosms.Message(to=number, text=text)
    except aiosms.ValidationError:
        assume(False)
        raise


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("verb", ["POST", "GET"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
@settings(max_examples=40, deadline=None)
@given(text=texts, number=numbers)
def test_mysms_sends_any_text_and_number_exactly(
    backend: str, fmt: str, verb: str, text: str, number: str
) -> None:
    message = _message(text, number)
    fake = FakeMySms()

    async def go() -> aiosms.Receipt:
        async with fake.client(sender="MyShop", format=fmt, method=verb) as sms:
            return await sms.send(message)

    receipt = anyio.run(go, backend=backend)
    (entry,) = fake.ledger
    assert (entry.text, entry.phone, entry.sender) == (text, number, "MyShop")
    assert receipt.message_id == entry.id


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("verb", ["POST", "GET"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
@settings(max_examples=40, deadline=None)
@given(text=texts, number=numbers)
def test_1000sms_sends_any_text_and_number_exactly(
    backend: str, fmt: str, verb: str, text: str, number: str
) -> None:
    message = _message(text, number)
    fake = FakeThousandSms(balance=10**6)

    async def go() -> tuple[aiosms.Receipt, aiosms.StatusReport]:
        async with fake.client(sender="sms-tester", format=fmt, method=verb) as sms:
            receipt = await sms.send(message)
            return receipt, await sms.status(receipt.message_id or "")

    receipt, report = anyio.run(go, backend=backend)
    (entry,) = fake.ledger
    assert (entry.text, entry.phone) == (text, number)
    assert receipt.message_id == entry.id
    # And back: the report carries the text and number the gateway holds.
    assert (report.text, report.phone) == (text, number)
