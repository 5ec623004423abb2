"""Pytest fixtures for testing code that uses aiosms (loaded automatically).

- ``fake_mysms``: a fresh ``FakeMySms``; ``fake_mysms.client(sender=...)`` gives a
  ``MySms`` wired to it in process.
- ``fake_mysms_url``: the same fake served on 127.0.0.1 for the test's duration.
- ``fake_thousandsms`` and ``fake_thousandsms_url``: the same for 1000sms.ru
  (``ThousandSms``).

Every fixture is a plain sync fixture: the URL fixtures serve the fake from a thread
with an event loop of its own, so they work under anyio's plugin (asyncio or trio),
pytest-asyncio (strict or auto mode), any other async plugin, or in a sync test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiosms.testing._mysms import FakeMySms
from aiosms.testing._server import serve_in_thread
from aiosms.testing._thousandsms import FakeThousandSms


@pytest.fixture
def fake_mysms() -> FakeMySms:
    """A fresh fake my-sms.ru gateway (user ``test-user``, password ``test-password``)."""
    return FakeMySms()


@pytest.fixture
def fake_mysms_url(fake_mysms: FakeMySms) -> Iterator[str]:
    """The base URL of ``fake_mysms`` served over HTTP on 127.0.0.1."""
    with serve_in_thread(fake_mysms) as base_url:
        yield base_url


@pytest.fixture
def fake_thousandsms() -> FakeThousandSms:
    """A fresh fake 1000sms.ru gateway (``test@example.com``, password ``test-password``)."""
    return FakeThousandSms()


@pytest.fixture
def fake_thousandsms_url(fake_thousandsms: FakeThousandSms) -> Iterator[str]:
    """The base URL of ``fake_thousandsms`` served over HTTP on 127.0.0.1."""
    with serve_in_thread(fake_thousandsms) as base_url:
        yield base_url
