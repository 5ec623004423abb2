"""The my-sms password never leaks: not in a repr, an exception, a traceback or a log record.

Every error is read through the shared oracle (tracebacks with frame locals, every
chained cause or context), and every log record of every logger at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from support import assert_no_secret, exception_texts, log_texts, msg

import aiosms
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio

SECRET = "S3cr3t-Pa55word-XYZ"
FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)

OUTCOMES = ["success", "rejection", "auth", "refused", "timeout", "malformed", "http_5xx"]
CALLS = ["send", "send_many", "status", "status_many", "balance"]


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
    errors: list[BaseException] = []
    async with fake.client(
        password=SECRET, sender="MyShop", format=fmt, method=verb, **options
    ) as sms:
        texts += [repr(sms), str(sms), repr(vars(sms))]
        try:
            result = await _call(sms, call)
        except aiosms.SmsError as error:
            errors.append(error)
        else:
            texts.append(repr(result))
            for item in result if isinstance(result, list) else [result]:
                item_error = getattr(item, "error", None)
                if item_error is not None:
                    errors.append(item_error)
    assert caplog.records, "the requests left log records to check"
    texts += log_texts(caplog)
    assert_no_secret(SECRET, texts)
    for failure in errors:
        assert_no_secret(SECRET, exception_texts(failure))
        # The request being sent is a local of some frames: the traceback a caller
        # prints (without locals) is what must not show the text or the number.
        texts += exception_texts(failure, frame_locals=False)
    # Texts and full numbers stay out of reprs, errors and log records too.
    assert not [t for t in texts if "482913" in t or "79112223333" in t]


async def test_nothing_logged_over_a_real_socket_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aiosms.install_log_filter()
    caplog.set_level(logging.DEBUG)
    fake = FakeMySms(password=SECRET, balance=Decimal("0"))
    async with (
        fake.serve() as base_url,
        aiosms.MySms(
            username=fake.username, password=SECRET, sender="MyShop", base_url=base_url
        ) as sms,
    ):
        with pytest.raises(aiosms.InsufficientFundsError) as caught:
            await sms.send(msg("Your code 482913"))
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert_no_secret(SECRET, log_texts(caplog))
    assert_no_secret(SECRET, exception_texts(caught.value))
