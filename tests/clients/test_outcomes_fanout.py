"""One request's failure, of any kind, is its own messages' or ids' outcome.

``send_many`` and ``status_many`` give one receipt or report per input, in order,
whatever one request raises: the other requests in flight go on and what they
collected is kept. ``Batcher.track`` asks again about ids whose request failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
import httpx
import pytest

import aiosms
from aiosms import DeliveryState, Message
from aiosms._transport import WireRequest, WireResponse
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

NO_RETRIES = aiosms.RetryPolicy(read_retries=0, send_retries=0)


class Surprising:
    """A transport of the caller's own that raises a plain exception for chosen requests.

    ``before``: it raises before the gateway sees the request; otherwise after the
    gateway did its work (so a send was accepted, and nobody hears of it).
    """

    def __init__(
        self,
        fake: FakeMySms | FakeThousandSms,
        chosen: Callable[[bytes], bool],
        *,
        before: bool = True,
        error: Exception | None = None,
    ) -> None:
        self.client = httpx.AsyncClient(transport=fake.httpx_transport())
        self.chosen = chosen
        self.before = before
        self.error = error or RuntimeError("the caller's transport broke")
        self.raised = 0

    async def request(
        self, request: WireRequest, *, timeout: httpx.Timeout | None = None
    ) -> WireResponse:
        hit = self.chosen(request.content or b"")
        if hit and self.before:
            self.raised += 1
            raise self.error
        response = await self.client.request(
            request.method,
            request.url,
            params=request.params,
            content=request.content,
            headers=request.headers,
        )
        if hit:
            self.raised += 1
            raise self.error
        return WireResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        await self.client.aclose()


def messages(count: int, bad: int | None = None) -> list[Message]:
    return [
        Message(to="79160000000", text="boom" if i == bad else f"m{i}", key=i) for i in range(count)
    ]


def holds_boom(body: bytes) -> bool:
    return b"boom" in body


# -- send_many ------------------------------------------------------------------------------


class OnePriceTooBig(httpx.AsyncBaseTransport):
    """The fake 1000sms in process, with a price no Decimal product can hold in one reply."""

    def __init__(self, fake: FakeThousandSms) -> None:
        self.inner = fake.httpx_transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if b"boom" in request.content:
            reply = json.loads(body)
            reply["data"]["credits"] = "9e999999"
            body = json.dumps(reply).encode()
        return httpx.Response(response.status_code, content=body)


async def test_a_price_too_big_to_multiply_loses_no_receipt_of_send_many() -> None:
    fake = FakeThousandSms()
    batch = messages(7, bad=3)
    async with fake.client(
        sender="sms-tester", http_transport=OnePriceTooBig(fake), max_concurrency=3
    ) as sms:
        receipts = await sms.send_many(batch)
    assert [r.message.key for r in receipts] == list(range(7))
    assert {r.state for r in receipts} == {DeliveryState.QUEUED}
    assert sorted(r.message_id or "" for r in receipts) == sorted(e.id for e in fake.ledger)
    assert receipts[3].cost is None


@pytest.mark.parametrize("before", [True, False], ids=["before-the-gateway", "after-it"])
async def test_a_1000sms_transport_raising_for_one_request_makes_only_that_message_unknown(
    before: bool,
) -> None:
    fake = FakeThousandSms()
    transport = Surprising(fake, holds_boom, before=before)
    batch = messages(8, bad=5)
    async with fake.client(sender="sms-tester", transport=transport, max_concurrency=4) as sms:
        receipts = await sms.send_many(batch)
    assert transport.raised == 1
    assert [r.message.key for r in receipts] == list(range(8))
    unknown = receipts[5]
    assert unknown.state is DeliveryState.UNKNOWN
    assert isinstance(unknown.error, aiosms.DeliveryUnknownError)
    assert unknown.error.messages == (batch[5],)
    others = receipts[:5] + receipts[6:]
    assert {r.state for r in others} == {DeliveryState.QUEUED}
    assert len(fake.ledger) == (7 if before else 8)


async def test_a_my_sms_transport_raising_for_one_packet_makes_only_that_packet_unknown() -> None:
    fake = FakeMySms()
    transport = Surprising(fake, holds_boom, before=False, error=ArithmeticError("odd"))
    batch = messages(9, bad=4)
    async with fake.client(
        sender="MyShop", transport=transport, packet_size=2, max_concurrency=3
    ) as sms:
        receipts = await sms.send_many(batch)
    assert [r.message.key for r in receipts] == list(range(9))
    # Messages 4 and 5 shared the packet that raised.
    assert [r.state for r in receipts[4:6]] == [DeliveryState.UNKNOWN] * 2
    for receipt in receipts[4:6]:
        assert isinstance(receipt.error, aiosms.DeliveryUnknownError)
        assert receipt.error.may_have_been_sent
    others = receipts[:4] + receipts[6:]
    assert {r.state for r in others} == {DeliveryState.QUEUED}
    assert len(fake.ledger) == 9


async def test_an_unexpected_send_failure_is_logged_by_type_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeThousandSms()
    secret = RuntimeError("http://api.1000sms.ru/?password=test-password")
    transport = Surprising(fake, holds_boom, error=secret)
    with caplog.at_level(logging.DEBUG, logger="aiosms"):
        async with fake.client(sender="sms-tester", transport=transport) as sms:
            (receipt,) = await sms.send_many(messages(1, bad=0))
    assert receipt.state is DeliveryState.UNKNOWN
    assert "RuntimeError" in str(receipt.error)
    assert "test-password" not in str(receipt.error)
    assert receipt.error is not None
    assert receipt.error.__cause__ is None
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    assert not any("test-password" in r.getMessage() or r.exc_info for r in caplog.records)


# -- status_many ----------------------------------------------------------------------------


async def _accepted(sms: aiosms.MySms | aiosms.ThousandSms, count: int) -> list[str]:
    receipts = await sms.send_many(messages(count))
    ids = [r.message_id for r in receipts]
    assert None not in ids
    return [i for i in ids if i is not None]


async def test_a_1000sms_transport_raising_for_one_id_gives_that_id_an_unknown_report() -> None:
    fake = FakeThousandSms()
    target: list[bytes] = []
    transport = Surprising(fake, lambda body: bool(target) and target[0] in body)
    async with fake.client(sender="sms-tester", transport=transport, max_concurrency=3) as sms:
        ids = await _accepted(sms, 6)
        target.append(f"id={ids[2]}".encode())
        reports = await sms.status_many(ids)
    assert [r.message_id for r in reports] == ids
    assert reports[2].state is DeliveryState.UNKNOWN
    assert isinstance(reports[2].error, aiosms.TransportError)
    others = reports[:2] + reports[3:]
    assert {r.state for r in others} == {DeliveryState.QUEUED}
    assert all(r.error is None for r in others)


async def test_a_my_sms_transport_raising_for_one_packet_gives_its_ids_unknown_reports() -> None:
    fake = FakeMySms()
    target: list[bytes] = []
    transport = Surprising(fake, lambda body: bool(target) and target[0] in body)
    async with fake.client(sender="MyShop", transport=transport, packet_size=2) as sms:
        ids = await _accepted(sms, 6)
        target.append(ids[3].encode())
        reports = await sms.status_many(ids)
    assert [r.message_id for r in reports] == ids
    assert [r.state for r in reports[2:4]] == [DeliveryState.UNKNOWN] * 2
    assert all(isinstance(r.error, aiosms.TransportError) for r in reports[2:4])
    assert all(r.state is not DeliveryState.UNKNOWN for r in reports[:2] + reports[4:])


async def test_a_failed_status_request_gives_its_ids_the_typed_error_and_the_rest_go_on() -> None:
    fake = FakeThousandSms()
    async with fake.client(sender="sms-tester", retry=NO_RETRIES, max_concurrency=1) as sms:
        ids = await _accepted(sms, 4)
        fake.faults.add(Fault.http_status(503), endpoint="get_msg_report")
        fake.answer_with(99, method="get_msg_report")
        reports = await sms.status_many(ids)
    assert [r.message_id for r in reports] == ids
    assert [r.state for r in reports] == [
        DeliveryState.UNKNOWN,
        DeliveryState.UNKNOWN,
        DeliveryState.QUEUED,
        DeliveryState.QUEUED,
    ]
    assert isinstance(reports[0].error, aiosms.TransportError)
    assert isinstance(reports[1].error, aiosms.GatewayError)
    assert reports[1].error.code == 99
    assert reports[1].code is None


async def test_status_many_asks_no_more_after_an_account_level_refusal() -> None:
    fake = FakeThousandSms()
    async with fake.client(password="wrong", max_concurrency=1) as sms:
        reports = await sms.status_many(["4000001", "4000002", "4000003"])
    assert len(fake.calls_to("get_msg_report")) == 1
    assert [r.message_id for r in reports] == ["4000001", "4000002", "4000003"]
    assert {r.state for r in reports} == {DeliveryState.UNKNOWN}
    assert all(isinstance(r.error, aiosms.AuthenticationError) for r in reports)


async def test_an_unknown_id_alone_in_its_request_stays_rejected() -> None:
    fake = FakeMySms()
    async with fake.client(sender="MyShop", method="GET") as sms:
        ids = await _accepted(sms, 1)
        reports = await sms.status_many([ids[0], "no-such-id"])
    assert reports[0].state is DeliveryState.QUEUED
    assert reports[1].state is DeliveryState.REJECTED
    assert isinstance(reports[1].error, aiosms.MessageNotFoundError)


# -- tracking ---------------------------------------------------------------------------------


async def test_tracking_asks_again_about_ids_whose_request_failed() -> None:
    fake = FakeThousandSms()
    async with (
        fake.client(sender="sms-tester", retry=NO_RETRIES) as sms,
        aiosms.Batcher(sms) as batcher,
    ):
        (message_id,) = await _accepted(sms, 1)
        fake.faults.add(Fault.http_status(503), endpoint="get_msg_report")
        fake.answer_with(99, method="get_msg_report")
        fake.answer_with(501, method="get_msg_report")
        with anyio.fail_after(10):
            reports = [r async for r in batcher.track([message_id], interval=0.01)]
    assert fake.received["get_msg_report"] >= 4
    assert [r.state for r in reports] == [
        DeliveryState.QUEUED,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
    ]
    assert all(r.error is None for r in reports)


async def test_tracking_raises_an_account_level_refusal() -> None:
    fake = FakeMySms()
    async with (
        fake.client(sender="MyShop") as sms,
        aiosms.Batcher(sms) as batcher,
    ):
        (message_id,) = await _accepted(sms, 1)
        fake.password = "changed"
        with anyio.fail_after(5), pytest.raises(aiosms.AuthenticationError):
            async for _ in batcher.track([message_id], interval=0.01):
                pass
