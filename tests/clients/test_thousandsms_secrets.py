"""The 1000sms password never shows: not in reprs, errors, tracebacks or log records.

Each scenario runs a client whose password is ``SECRET`` against the fake, and
collects every text a caller could see: the client's repr, each error as the shared
oracle reads it (tests/support.py: tracebacks with frame locals, every chained cause
or context), and every log record of every logger at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from support import assert_no_secret, exception_texts, log_texts, msg

import aiosms
from aiosms import Message, Receipt, RetryPolicy, StatusReport
from aiosms.testing import FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

SECRET = "Zx9-very-secret-Pw"

Scenario = Callable[[aiosms.ThousandSms, FakeThousandSms], Awaitable[object]]


async def send_ok(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert receipt.message_id is not None
    return [receipt, await sms.status(receipt.message_id), await sms.profile()]


async def send(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    return await sms.send(Message(to="79160000000", text="Hi"))


async def rejected(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.blacklist.add("79160000000")
    return await send(sms, fake)


async def wrong_login(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.password = "another-password"
    return await send(sms, fake)


async def reset_after_accept(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.reset_after())
    return await send(sms, fake)


async def refused(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.refuse(), times=3)
    return await send(sms, fake)


async def timed_out(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.stall(5))
    return await sms.send(Message(to="79160000000", text="Hi"), timeout=0.05)


async def malformed_send(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.malformed())
    return await send(sms, fake)


async def server_error_read(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.http_status(503), times=3)
    return await sms.profile()


async def malformed_read(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.faults.add(Fault.html())
    return await sms.balance()


async def unknown_id(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    return await sms.status("123")


async def batch(sms: aiosms.ThousandSms, fake: FakeThousandSms) -> object:
    fake.blacklist.add("79160000001")
    fake.faults.add(Fault.reset_after(), endpoint="push_msg")
    messages = [Message(to=f"7916000000{i}", text="Hi") for i in range(3)]
    receipts = await sms.send_many(messages)
    reports = await sms.status_many(["1", *(r.message_id or "1" for r in receipts)])
    items: list[Receipt | StatusReport] = [*receipts, *reports]
    errors = [item.error for item in items if item.error is not None]
    kinds = sorted(type(e).__name__ for e in errors)
    assert kinds == [
        "BlacklistedError",
        "DeliveryUnknownError",
        "MessageNotFoundError",
        "MessageNotFoundError",
        "MessageNotFoundError",
    ]
    for error in errors:
        assert_no_secret(SECRET, exception_texts(error))
    raise next(e for e in errors if isinstance(e, aiosms.DeliveryUnknownError))


FAILURES: dict[str, tuple[Scenario, type[aiosms.SmsError]]] = {
    "rejected": (rejected, aiosms.BlacklistedError),
    "wrong-login": (wrong_login, aiosms.AuthenticationError),
    "reset-after-accept": (reset_after_accept, aiosms.DeliveryUnknownError),
    "refused": (refused, aiosms.TransportError),
    "timed-out": (timed_out, aiosms.DeliveryUnknownError),
    "malformed-send": (malformed_send, aiosms.DeliveryUnknownError),
    "server-error-read": (server_error_read, aiosms.TransportError),
    "malformed-read": (malformed_read, aiosms.ProtocolError),
    "unknown-id": (unknown_id, aiosms.MessageNotFoundError),
    "send-many": (batch, aiosms.DeliveryUnknownError),
}


def client(fake: FakeThousandSms, verb: str) -> aiosms.ThousandSms:
    return fake.client(
        password=SECRET,
        sender="sms-tester",
        method=verb,
        retry=RetryPolicy(initial_delay=0),
    )


@pytest.mark.parametrize("verb", ["POST", "GET"])
def test_the_client_repr_never_shows_the_password(verb: str) -> None:
    sms = client(FakeThousandSms(password=SECRET), verb)
    assert_no_secret(SECRET, [repr(sms), str(sms), repr(vars(sms))])


@pytest.mark.parametrize("verb", ["POST", "GET"])
async def test_a_successful_exchange_logs_no_password(
    caplog: pytest.LogCaptureFixture, verb: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if verb == "GET":
        # httpx itself logs GET URLs at INFO (the README says so); aiosms's filter masks them.
        aiosms.install_log_filter()
    fake = FakeThousandSms(password=SECRET)
    async with client(fake, verb) as sms:
        results = await send_ok(sms, fake)
    assert_no_secret(SECRET, [repr(results)])
    assert caplog.records
    assert_no_secret(SECRET, log_texts(caplog))


@pytest.mark.parametrize("verb", ["POST", "GET"])
@pytest.mark.parametrize("name", sorted(FAILURES))
async def test_no_failure_shows_the_password_in_its_error_traceback_or_logs(
    caplog: pytest.LogCaptureFixture, verb: str, name: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if verb == "GET":
        aiosms.install_log_filter()
    scenario, expected = FAILURES[name]
    fake = FakeThousandSms(password=SECRET)
    async with client(fake, verb) as sms:
        with pytest.raises(expected) as caught:
            await scenario(sms, fake)
    assert_no_secret(SECRET, exception_texts(caught.value))
    assert_no_secret(SECRET, log_texts(caplog))


async def test_nothing_logged_over_a_real_socket_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeThousandSms(password=SECRET, balance=Decimal("2.5"))
    async with (
        fake.serve() as base_url,
        aiosms.ThousandSms(
            email=fake.email, password=SECRET, sender="sms-tester", base_url=base_url
        ) as sms,
    ):
        await sms.send(Message(to="79160000000", text="Hi"))
        with pytest.raises(aiosms.InsufficientFundsError) as caught:
            await sms.send(Message(to="79160000000", text="Hi"))
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert_no_secret(SECRET, log_texts(caplog))
    assert_no_secret(SECRET, exception_texts(caught.value))


async def test_the_1000sms_client_keeps_no_readable_password_after_sending(
    fake_thousandsms: FakeThousandSms,
) -> None:
    sms = fake_thousandsms.client(password="S3cr3t-XYZ", sender="sms-tester")
    fake_thousandsms.password = "S3cr3t-XYZ"
    async with sms:
        await sms.send(msg())
    assert "S3cr3t-XYZ" not in repr(vars(sms))
