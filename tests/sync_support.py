"""Helpers for the blocking API's tests: a fake gateway served on 127.0.0.1 from a
thread with an event loop of its own, so the test itself stays plain blocking code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import start_blocking_portal

import aiosms
from aiosms.testing import FakeGateway, FakeMySms, FakeThousandSms

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


@contextmanager
def served(fake: FakeGateway) -> Iterator[str]:
    """Serve ``fake`` over HTTP on 127.0.0.1 from its own thread; yield the base URL."""
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(fake.serve()) as base_url,
    ):
        yield base_url


def mysms(fake: FakeMySms, base_url: str, **options: Any) -> aiosms.sync.MySms:
    options.setdefault("username", fake.username)
    options.setdefault("password", fake.password)
    options.setdefault("sender", "MyShop")
    options.setdefault("retry", FAST)
    return aiosms.sync.MySms(base_url=base_url, **options)


def thousandsms(fake: FakeThousandSms, base_url: str, **options: Any) -> aiosms.sync.ThousandSms:
    options.setdefault("email", fake.email)
    options.setdefault("password", fake.password)
    options.setdefault("sender", "sms-tester")
    options.setdefault("retry", FAST)
    return aiosms.sync.ThousandSms(base_url=base_url, **options)


def loop_threads() -> list[threading.Thread]:
    """The blocking clients' event-loop threads alive in this process."""
    return [t for t in threading.enumerate() if t.name.startswith("aiosms.sync.")]
