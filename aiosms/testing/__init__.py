"""Fake gateways for testing code that uses aiosms, with no network and no money.

Each fake follows its gateway's document, keeps state (balance, message states, a
ledger of accepted messages) and injects faults on demand. Use one in process::

    fake = FakeMySms()
    async with fake.client(sender="MyShop") as sms:
        await sms.send(aiosms.Message(to="79112223333", text="Hi"))
    assert len(fake.ledger) == 1

or over real HTTP on 127.0.0.1::

    async with fake.serve() as base_url:
        async with aiosms.MySms(username=fake.username, password=fake.password,
                                base_url=base_url) as sms: ...

Pytest fixtures ``fake_mysms``, ``fake_mysms_url``, ``fake_thousandsms`` and
``fake_thousandsms_url`` come with the package.
"""

from aiosms.testing._faults import CHAOS_FAULTS, Fault, FaultPlan
from aiosms.testing._gateway import CallRecord, FakeGateway, FakeTransport
from aiosms.testing._mysms import FakeMySms, LedgerEntry
from aiosms.testing._thousandsms import FakeThousandSms, ThousandSmsLedgerEntry

__all__ = [
    "CHAOS_FAULTS",
    "CallRecord",
    "FakeGateway",
    "FakeMySms",
    "FakeThousandSms",
    "FakeTransport",
    "Fault",
    "FaultPlan",
    "LedgerEntry",
    "ThousandSmsLedgerEntry",
]
