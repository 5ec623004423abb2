"""Building the gateway client a command talks to, the fake gateway included.

``--gateway fake`` serves aiosms's own fake gateway on 127.0.0.1 for the command's
duration (or, with ``--base-url``, talks to one already running under
``aiosms fake serve``) with the fake's own credentials: no account, no money.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from aiosms._providers.mysms import MySms
from aiosms._providers.thousandsms import ThousandSms
from aiosms.cli._credentials import resolve_credentials
from aiosms.cli._settings import FAKE_SENDER, Settings
from aiosms.testing import FakeMySms, FakeThousandSms

__all__ = ["FAKE_BALANCE", "Client", "make_fake", "open_client"]

Client = MySms | ThousandSms

#: What a fresh fake account holds.
FAKE_BALANCE = Decimal("1000")


def make_fake(
    flavour: str, *, latency: float = 0.0, balance: Decimal = FAKE_BALANCE
) -> FakeMySms | FakeThousandSms:
    """A fresh fake gateway of ``flavour`` ("mysms" or "1000sms") with the default fake account."""
    if flavour == "1000sms":
        return FakeThousandSms(balance=balance, latency=latency)
    return FakeMySms(balance=balance, latency=latency)


def _build(
    settings: Settings, login: str, password: str, sender: str | None, **extra: Any
) -> Client:
    if settings.base_url:
        extra["base_url"] = settings.base_url
    if settings.flavour == "1000sms":
        return ThousandSms(email=login, password=password, sender=sender, **extra)
    return MySms(username=login, password=password, sender=sender, **extra)


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[Client]:
    """An open client for the chosen gateway; with ``fake``, the fake lives as long as it."""
    if settings.gateway != "fake":
        credentials = resolve_credentials(settings)
        async with _build(
            settings, credentials.login, credentials.password, settings.sender
        ) as client:
            yield client
        return
    fake = make_fake(settings.flavour)
    login = fake.username if isinstance(fake, FakeMySms) else fake.email
    sender = settings.sender or FAKE_SENDER
    if settings.base_url:
        async with _build(settings, login, fake.password, sender) as client:
            yield client
        return
    async with (
        fake.serve() as base_url,
        _build(settings, login, fake.password, sender, base_url=base_url) as client,
    ):
        yield client
