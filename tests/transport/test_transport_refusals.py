"""HTTP refusals of a send: which are "not sent", and which stop the flow.

A 401, 403, 404 or 405 comes from the server before any gateway logic runs (a typo
in ``base_url`` gives 404 to every request): the message was not sent, and a
Batcher or ``send_many`` stops instead of sending packet after doomed packet. A 429
is a refusal too, retried within the send budget after ``Retry-After``. Any other
4xx may hide a gateway that did the work: unknown.
"""

from __future__ import annotations

import time

import anyio
import pytest
from support import msg

import aiosms
from aiosms._outcomes import stops_the_flow
from aiosms.testing import FakeGateway, FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


def make_fake(gateway: str) -> FakeMySms | FakeThousandSms:
    return FakeMySms() if gateway == "mysms" else FakeThousandSms()


def send_endpoint(fake: FakeGateway) -> str:
    return "send" if isinstance(fake, FakeMySms) else "push_msg"


def mistyped(base_url: str) -> str:
    # One letter off in the path: the server answers 404 to everything.
    return base_url + "x/"


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_a_send_to_a_mistyped_base_url_is_not_sent(gateway: str) -> None:
    fake = make_fake(gateway)
    async with (
        fake.serve() as base_url,
        fake.client(base_url=mistyped(base_url), sender="sms-tester", retry=FAST) as sms,
    ):
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(msg())
    assert caught.value.status_code == 404
    assert caught.value.may_have_been_sent is False
    assert "nothing was sent" in str(caught.value)
    assert sum(fake.received.values()) == 1
    assert fake.ledger == []


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_send_many_to_a_mistyped_base_url_stops_after_the_first_refusal(
    gateway: str,
) -> None:
    fake = make_fake(gateway)
    extra = {"packet_size": 1} if gateway == "mysms" else {}
    async with (
        fake.serve() as base_url,
        fake.client(
            base_url=mistyped(base_url),
            sender="sms-tester",
            retry=FAST,
            max_concurrency=1,
            **extra,
        ) as sms,
    ):
        receipts = await sms.send_many([msg(f"m{i}") for i in range(20)])
    assert len(receipts) == 20
    assert all(r.state is aiosms.DeliveryState.REJECTED for r in receipts)
    assert all(r.error is not None and not r.error.may_have_been_sent for r in receipts)
    assert sum(fake.received.values()) == 1


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_a_batcher_to_a_mistyped_base_url_stops_sending(gateway: str) -> None:
    fake = make_fake(gateway)
    async with (
        fake.serve() as base_url,
        fake.client(base_url=mistyped(base_url), sender="sms-tester", retry=FAST) as sms,
        aiosms.Batcher(sms, max_batch_size=1, linger=0, max_concurrency=2) as batcher,
    ):
        with anyio.fail_after(10):
            receipts = [r async for r in batcher.send_all(msg(f"m{i}") for i in range(200))]
    assert len(receipts) == 200
    assert all(r.state is aiosms.DeliveryState.REJECTED for r in receipts)
    assert all(r.error is not None and not r.error.may_have_been_sent for r in receipts)
    # Only what was already in flight when the first refusal came back.
    assert sum(fake.received.values()) <= 4


@pytest.mark.parametrize("status", [401, 403, 404, 405])
@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_an_http_refusal_of_a_send_is_not_sent_and_not_retried(
    gateway: str, status: int
) -> None:
    fake = make_fake(gateway)
    fake.faults.add(Fault.http_status(status), endpoint=send_endpoint(fake))
    async with fake.client(sender="sms-tester", retry=FAST) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(msg())
    assert caught.value.status_code == status
    assert caught.value.kind == f"HTTP {status}"
    assert caught.value.may_have_been_sent is False
    assert stops_the_flow(caught.value)
    assert fake.received[send_endpoint(fake)] == 1


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_a_429_to_a_send_is_retried_after_retry_after(gateway: str) -> None:
    fake = make_fake(gateway)
    fake.faults.add(Fault.http_status(429, retry_after="5"), times=2, endpoint=send_endpoint(fake))
    # Retry-After is honoured up to the policy's cap: 0.2 s here, not 5.
    policy = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.2)
    async with fake.client(sender="sms-tester", retry=policy) as sms:
        started = time.monotonic()
        receipt = await sms.send(msg())
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 4.0
    assert fake.received[send_endpoint(fake)] == 3
    assert [e.id for e in fake.ledger] == [receipt.message_id]


@pytest.mark.parametrize("gateway", ["mysms", "1000sms"])
async def test_a_429_past_the_send_budget_is_not_sent_and_does_not_stop_the_flow(
    gateway: str,
) -> None:
    fake = make_fake(gateway)
    fake.faults.add(Fault.http_status(429, retry_after="0"), times=3, endpoint=send_endpoint(fake))
    async with fake.client(sender="sms-tester", retry=FAST) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(msg())
    assert caught.value.status_code == 429
    assert caught.value.may_have_been_sent is False
    assert not stops_the_flow(caught.value)
    assert fake.received[send_endpoint(fake)] == 3
    assert fake.ledger == []


@pytest.mark.parametrize("status", [400, 409, 413, 422])
async def test_other_4xx_to_a_send_stay_unknown(status: int) -> None:
    fake = FakeMySms()
    fake.faults.add(Fault.http_status(status), endpoint="send")
    async with fake.client(sender="MyShop", retry=FAST) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg())
    assert caught.value.kind == f"HTTP {status}"
    assert not stops_the_flow(caught.value)
    assert fake.received["send"] == 1


def test_account_level_refusals_stop_the_flow_and_single_message_ones_do_not() -> None:
    assert stops_the_flow(aiosms.AuthenticationError(provider="my-sms", code=-1))
    assert stops_the_flow(aiosms.InsufficientFundsError(provider="my-sms", code=-13))
    assert stops_the_flow(aiosms.AccountError(provider="1000sms", code=605))
    assert not stops_the_flow(aiosms.RecipientError(provider="my-sms", code=-12))
    assert not stops_the_flow(None)
    assert not stops_the_flow(
        aiosms.TransportError("x", kind="HTTP 503", status_code=503, may_have_been_sent=False)
    )
