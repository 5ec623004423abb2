"""Pytest fixtures for testing code that uses aiosms (loaded automatically).

- ``fake_mysms``: a fresh ``FakeMySms``; ``fake_mysms.client(sender=...)`` gives a
  ``MySms`` wired to it in process.
- ``fake_mysms_url``: the same fake served on 127.0.0.1 for the test's duration
  (an async fixture: the test runs under anyio's pytest plugin).
- ``fake_thousandsms`` and ``fake_thousandsms_url``: the same for 1000sms.ru
  (``ThousandSms``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiosms.testing._mysms import FakeMySms
from aiosms.testing._thousandsms import FakeThousandSms


@pytest.fixture
def fake_mysms() -> FakeMySms:
    """A fresh fake my-sms.ru gateway (user ``test-user``, password ``test-password``)."""
    return FakeMySms()


@pytest.fixture
async def fake_mysms_url(fake_mysms: FakeMySms) -> AsyncIterator[str]:
    """The base URL of ``fake_mysms`` served over HTTP on 127.0.0.1."""
    async with fake_mysms.serve() as base_url:
        yield base_url


@pytest.fixture
def fake_thousandsms() -> FakeThousandSms:
    """A fresh fake 1000sms.ru gateway (``test@example.com``, password ``test-password``)."""
    return FakeThousandSms()


@pytest.fixture
async def fake_thousandsms_url(fake_thousandsms: FakeThousandSms) -> AsyncIterator[str]:
    """The base URL of ``fake_thousandsms`` served over HTTP on 127.0.0.1."""
    async with fake_thousandsms.serve() as base_url:
        yield base_url
