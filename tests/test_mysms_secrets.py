"""The password never leaks: not in a repr, an exception, a traceback or a log record."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import aiosms
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio

SECRET = "S3cr3t-Pa55word-XYZ"
FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)

OUTCOMES = ["success", "rejection", "auth", "refused", "timeout", "malformed", "http_5xx"]
CALLS = ["send", "send_many", "status", "status_many", "balance"]


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _texts_of(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    for link in _chain(error):
        texts += [str(link), repr(link), repr(vars(link)) if hasattr(link, "__dict__") else ""]
    return texts


def _prepare(fake: FakeMySms, outcome: str) -> dict[str, Any]:
    options: dict[str, Any] = {"retry": FAST}
    if outcome == "rejection":
        fake.reject_number("79112223333", -12)
    elif outcome == "auth":
        fake.password = "another-password"
    elif outcome == "refused":
        fake.faults.add(Fault.refuse(), times=10)
    elif outcome == "timeout":
        fake.faults.add(Fault.stall(5), times=10)
        options["timeout"] = 0.1
    elif outcome == "malformed":
        fake.faults.add(Fault.malformed(), times=10)
    elif outcome == "http_5xx":
        fake.faults.add(Fault.http_status(503), times=10)
    return options


async def _call(sms: aiosms.MySms, call: str) -> object:
    message = aiosms.Message(to="79112223333", text="Your code 482913")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "send": lambda: sms.send(message),
        "send_many": lambda: sms.send_many([message, message]),
        "status": lambda: sms.status("some-id"),
        "status_many": lambda: sms.status_many(["some-id", "other-id"]),
        "balance": sms.balance,
    }
    return await calls[call]()


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("verb", ["POST", "GET"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_password_appears_nowhere_whatever_happens(
    caplog: pytest.LogCaptureFixture, fmt: str, verb: str, call: str, outcome: str
) -> None:
    aiosms.install_log_filter()
    caplog.set_level(logging.DEBUG)
    fake = FakeMySms(password=SECRET)
    options = _prepare(fake, outcome)
    texts: list[str] = []
    async with fake.client(
        password=SECRET, sender="MyShop", format=fmt, method=verb, **options
    ) as sms:
        texts.append(repr(sms))
        try:
            result = await _call(sms, call)
        except aiosms.SmsError as error:
            texts += _texts_of(error)
        else:
            texts.append(repr(result))
            for item in result if isinstance(result, list) else [result]:
                item_error = getattr(item, "error", None)
                if item_error is not None:
                    texts += _texts_of(item_error)
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert caplog.records, "the requests left log records to check"
    leaks = [text for text in texts if SECRET in text]
    assert leaks == []
    # Texts and full numbers stay out of reprs too.
    assert not [t for t in texts if "482913" in t or "79112223333" in t]
