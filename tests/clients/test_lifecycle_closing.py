"""Closing a client while requests wait to retry: every outcome typed, nothing lost.

A request in its backoff must not wake up to a closed transport: it stops with
``ClosedError`` (not sent), receipts already earned are kept, and no exception that
escapes carries the password in any frame of its traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import anyio
import pytest
from support import msg

import aiosms
from aiosms import DeliveryState
from aiosms.testing import FakeGateway, FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

PASSWORD = "pa55-w0rd-of-the-tests"
SLOW = aiosms.RetryPolicy(initial_delay=5.0, max_delay=5.0, jitter=0.0)


def make_fake(gateway: str) -> FakeMySms | FakeThousandSms:
    if gateway == "mysms":
        return FakeMySms(password=PASSWORD)
    return FakeThousandSms(password=PASSWORD)


def send_endpoint(fake: FakeGateway) -> str:
    return "send" if isinstance(fake, FakeMySms) else "push_msg"


def read_endpoint(fake: FakeGateway) -> str:
    return "credit" if isinstance(fake, FakeMySms) else "get_profile"


def _frames(tb: TracebackType | None) -> Iterator[dict[str, Any]]:
    while tb is not None:
        yield tb.tb_frame.f_locals
        tb = tb.tb_next


def _exceptions(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(getattr(current, "exceptions", ()))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def assert_no_password_in_traceback(error: BaseException, password: str) -> None:
    """What an error tracker records: every frame's locals, down every chain."""
    for exc in _exceptions(error):
        assert password not in str(exc)
        assert password not in repr(exc.args)
        for frame_locals in _frames(exc.__traceback__):
            for name, value in frame_locals.items():
                if isinstance(value, bytes):
                    found = password.encode() in value
                elif isinstance(value, str):
                    found = password in value
                else:
                    found = password in repr(value)
                assert not found, f"{name} in a traceback frame of {type(exc).__name__}"


async def close_soon(sms: aiosms.MySms | aiosms.ThousandSms, delay: float = 0.3) -> None:
    await anyio.sleep(delay)
    await sms.aclose()


async def run_and_close(
    sms: aiosms.MySms | aiosms.ThousandSms, call: Callable[[], Awaitable[object]]
) -> BaseException:
    """Run ``call`` and close ``sms`` while it waits to retry; return what it raised."""
    outcome: list[BaseException] = []

    async def run() -> None:
        try:
            await call()
        except aiosms.SmsError as error:
            outcome.append(error)

    with anyio.fail_after(3):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(close_soon, sms)
    (error,) = outcome
    return error


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_closing_during_a_sends_backoff_stops_it_as_not_sent(
    gateway: str, method: str
) -> None:
    fake = make_fake(gateway)
    # A 429 to a send is a refusal: retried after Retry-After, and closing comes first.
    fake.faults.add(Fault.http_status(429, retry_after="5"), endpoint=send_endpoint(fake))
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, sender="sms-tester", method=method, retry=SLOW)
        async with sms:
            error = await run_and_close(sms, lambda: sms.send(msg()))
    assert isinstance(error, aiosms.ClosedError)
    assert error.may_have_been_sent is False
    assert fake.received[send_endpoint(fake)] == 1
    assert fake.ledger == []
    assert_no_password_in_traceback(error, PASSWORD)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("read", ["status", "balance"])
async def test_closing_during_a_reads_backoff_stops_it_with_a_typed_error(
    gateway: str, method: str, read: str
) -> None:
    fake = make_fake(gateway)
    endpoint = read_endpoint(fake) if read == "balance" else None
    fake.faults.add(Fault.http_status(503, retry_after="5"), endpoint=endpoint)
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, method=method, retry=SLOW)
        async with sms:
            call = sms.balance if read == "balance" else lambda: sms.status("some-id")
            error = await run_and_close(sms, call)
    assert isinstance(error, aiosms.ClosedError)
    assert sum(fake.received.values()) == 1
    assert_no_password_in_traceback(error, PASSWORD)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_closing_during_send_many_keeps_the_receipts_already_earned(gateway: str) -> None:
    fake = make_fake(gateway)
    fake.faults.add(Fault.http_status(429, retry_after="5"), endpoint=send_endpoint(fake))
    async with fake.serve() as base_url:
        # my-sms: packets of one, so one packet waits while the others are accepted.
        extra = {"packet_size": 1} if gateway == "mysms" else {}
        sms = fake.client(
            base_url=base_url, sender="sms-tester", retry=SLOW, max_concurrency=2, **extra
        )
        async with sms:
            receipts: list[aiosms.Receipt] = []

            async def send_all() -> None:
                receipts.extend(await sms.send_many([msg(f"m{i}") for i in range(5)]))

            with anyio.fail_after(3):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send_all)
                    tg.start_soon(close_soon, sms)
    # Whichever request met the 429 waited and was stopped; the others were accepted.
    (stopped,) = [r for r in receipts if r.state is not aiosms.DeliveryState.QUEUED]
    assert stopped.state is aiosms.DeliveryState.REJECTED
    assert isinstance(stopped.error, aiosms.ClosedError)
    assert [r.message.text for r in receipts] == [f"m{i}" for i in range(5)]
    accepted = {r.message_id for r in receipts if r.message_id is not None}
    assert accepted == {entry.id for entry in fake.ledger}
    assert len(accepted) == 4


async def test_closing_under_a_batcher_reports_a_waiting_message_as_not_sent() -> None:
    fake = FakeMySms(password=PASSWORD)
    fake.faults.add(Fault.http_status(429, retry_after="5"), endpoint="send")
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, sender="MyShop", retry=SLOW)
        async with sms, aiosms.Batcher(sms, max_batch_size=1, linger=0) as batcher:
            error = await run_and_close(sms, lambda: batcher.send(msg()))
    assert isinstance(error, aiosms.ClosedError)
    assert error.may_have_been_sent is False
    assert fake.ledger == []


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_closing_with_a_send_in_flight_is_a_typed_unknown_outcome(
    gateway: str, method: str
) -> None:
    fake = make_fake(gateway)
    fake.latency = 2.0
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, sender="sms-tester", method=method, retry=SLOW)
        async with sms:
            error = await run_and_close(sms, lambda: sms.send(msg()))
    # The request was written: the gateway may have it.
    assert isinstance(error, aiosms.DeliveryUnknownError)
    assert_no_password_in_traceback(error, PASSWORD)


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_closing_with_a_read_in_flight_is_a_typed_error(gateway: str) -> None:
    fake = make_fake(gateway)
    fake.latency = 2.0
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, retry=SLOW)
        async with sms:
            error = await run_and_close(sms, sms.balance)
    assert isinstance(error, (aiosms.TransportError, aiosms.ClosedError))
    assert error.may_have_been_sent is False
    assert_no_password_in_traceback(error, PASSWORD)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("in_flight", [True, False], ids=["in-flight", "in-backoff"])
async def test_closing_an_aiohttp_client_gives_typed_outcomes(in_flight: bool) -> None:
    fake = FakeThousandSms(password=PASSWORD)
    if in_flight:
        fake.latency = 2.0
    else:
        fake.faults.add(Fault.http_status(429, retry_after="5"), endpoint="push_msg")
    async with fake.serve() as base_url:
        sms = fake.client(base_url=base_url, sender="sms-tester", transport="aiohttp", retry=SLOW)
        async with sms:
            error = await run_and_close(sms, lambda: sms.send(msg()))
    expected = aiosms.DeliveryUnknownError if in_flight else aiosms.ClosedError
    assert isinstance(error, expected)
    assert error.may_have_been_sent is in_flight
    assert_no_password_in_traceback(error, PASSWORD)


async def test_send_many_on_a_client_closed_meanwhile_gives_every_message_a_receipt() -> None:
    fake = FakeThousandSms(latency=0.05)
    sms = fake.client(sender="sms-tester", max_concurrency=2)
    receipts: list[aiosms.Receipt] = []

    async def send() -> None:
        receipts.extend(await sms.send_many([msg(str(i)) for i in range(6)]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        await anyio.sleep(0.07)
        await sms.aclose()
    assert len(receipts) == 6
    sent = {e.text for e in fake.ledger}
    for receipt in receipts:
        if receipt.message.text in sent:
            assert receipt.state in (DeliveryState.QUEUED, DeliveryState.UNKNOWN)
        else:
            assert receipt.error is not None
            # Never reported as sent when the gateway did not take it.
            assert receipt.state in (DeliveryState.REJECTED, DeliveryState.UNKNOWN)
    assert any(isinstance(r.error, aiosms.ClosedError) for r in receipts)
