from __future__ import annotations

import pytest

import aiosms
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio


async def test_a_message_sent_in_process_lands_in_the_fake_ledger(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client(sender="MyShop") as sms:
        receipt = await sms.send(aiosms.Message(to="+7 911 222-33-33", text="Hello"))
    assert receipt.state is aiosms.DeliveryState.QUEUED
    assert [e.phone for e in fake_mysms.ledger] == ["79112223333"]
    assert receipt.message_id == fake_mysms.ledger[0].id
