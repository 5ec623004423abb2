"""What a successful reply carries beyond its key field is information, read leniently.

A 1000sms push is accepted by its ``id`` alone: parts, price and sender name that
cannot be read become None (parts: counted locally), never an unknown outcome that
throws the id away. A report keeps its state whatever its dates hold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

import aiosms
from aiosms import DeliveryState, Message
from aiosms.testing import FakeThousandSms

pytestmark = pytest.mark.anyio

MSK = timezone(timedelta(hours=3))
Rewrite = Callable[[dict[str, Any]], None]


class Rewriting(httpx.AsyncBaseTransport):
    """The fake gateway in process, with the ``data`` of one method's JSON replies rewritten.

    The fake does its work as usual (its ledger records what it accepted); only the
    reply's data changes on the way back, as a gateway writing a field oddly would.
    """

    def __init__(self, fake: FakeThousandSms, method: str, rewrite: Rewrite) -> None:
        self.inner = fake.httpx_transport()
        self.method = method
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if f"method={self.method}".encode() not in request.content:
            return httpx.Response(response.status_code, content=body)
        reply = json.loads(body)
        if isinstance(reply.get("data"), dict):
            self.rewrite(reply["data"])
        return httpx.Response(response.status_code, content=json.dumps(reply).encode())


def rewritten(fake: FakeThousandSms, method: str, rewrite: Rewrite) -> aiosms.ThousandSms:
    return fake.client(
        sender="sms-tester", http_transport=Rewriting(fake, method, rewrite), format="json"
    )


def setting(**fields: Any) -> Rewrite:
    return lambda data: data.update(fields)


LONG = "Ж" * 71  # two UCS-2 parts


# -- an accepted push is accepted ----------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, "1.0", "two", -1, 0, True, [], {"n": 2}], ids=repr)
async def test_an_accepted_push_with_unreadable_parts_keeps_its_id_and_counts_parts_locally(
    value: Any,
) -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "push_msg", setting(n_raw_sms=value)) as sms:
        receipt = await sms.send(Message(to="79160000000", text=LONG))
    (entry,) = fake.ledger
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.error is None
    assert receipt.message_id == entry.id
    assert receipt.parts == 2
    assert receipt.cost is None


@pytest.mark.parametrize(
    "value", ["0.35 руб.", False, {}, [1], "NaN", "Infinity", "-1", "9e999999"], ids=repr
)
async def test_an_accepted_push_with_an_unreadable_price_keeps_its_id_and_has_no_cost(
    value: Any,
) -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "push_msg", setting(credits=value)) as sms:
        receipt = await sms.send(Message(to="79160000000", text=LONG))
    (entry,) = fake.ledger
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.message_id == entry.id
    assert receipt.parts == 2
    assert receipt.cost is None


@pytest.mark.parametrize("value", [False, [], {"a": "b"}, None, ""], ids=repr)
async def test_an_accepted_push_with_an_unreadable_sender_name_keeps_the_one_asked_for(
    value: Any,
) -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "push_msg", setting(sender_name=value)) as sms:
        receipt = await sms.send(Message(to="79160000000", text="Hi"))
    (entry,) = fake.ledger
    assert receipt.message_id == entry.id
    assert receipt.state is DeliveryState.QUEUED
    assert receipt.sender == "sms-tester"
    assert receipt.cost == Decimal("2.5")


async def test_an_accepted_push_with_every_extra_field_odd_is_still_accepted_in_send_many() -> None:
    fake = FakeThousandSms()
    odd = setting(n_raw_sms=1.0, credits="0.35 руб.", sender_name=False)
    messages = [Message(to="79160000000", text=f"m{i}", key=i) for i in range(5)]
    async with rewritten(fake, "push_msg", odd) as sms:
        receipts = await sms.send_many(messages)
    assert [r.message.key for r in receipts] == list(range(5))
    assert {r.state for r in receipts} == {DeliveryState.QUEUED}
    assert sorted(r.message_id or "" for r in receipts) == sorted(e.id for e in fake.ledger)


@pytest.mark.parametrize("value", [4000001.0, True, [], {"id": 1}, "", "  "], ids=repr)
async def test_a_push_whose_id_cannot_be_read_is_an_unknown_outcome(value: Any) -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "push_msg", setting(id=value)) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(Message(to="79160000000", text="Hi"))
    assert len(fake.ledger) == 1


async def test_an_accepted_xml_push_with_odd_extra_fields_keeps_its_id() -> None:
    body = (
        "<response><msg><err_code>0</err_code><text>ok</text><type><a/></type></msg>"
        "<data><id>4000077</id><credits>0.35 руб.</credits><n_raw_sms>1.0</n_raw_sms>"
        "<sender_name><x>1</x></sender_name></data></response>"
    ).encode()
    async with aiosms.ThousandSms(
        email="a@b.c",
        password="p",
        sender="sms-tester",
        format="xml",
        base_url="http://fake.test/",
        http_transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
    ) as sms:
        receipt = await sms.send(Message(to="79160000000", text=LONG))
    assert (receipt.message_id, receipt.state) == ("4000077", DeliveryState.QUEUED)
    assert (receipt.parts, receipt.cost, receipt.sender) == (2, None, "sms-tester")


# -- a report keeps its state ---------------------------------------------------------------

EDGE_DATES = [
    "0001-01-01T00:00:00+03:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    1e30,
    -1e30,
    math.inf,
    math.nan,
    [1],
    {"d": 1},
    True,
    "yesterday",
]


async def _sent(sms: aiosms.ThousandSms) -> str:
    receipt = await sms.send(Message(to="79160000000", text="Hi"))
    assert receipt.message_id is not None
    return receipt.message_id


@pytest.mark.parametrize("value", EDGE_DATES, ids=repr)
async def test_a_report_whose_dates_cannot_be_read_keeps_its_state_with_no_dates(
    value: Any,
) -> None:
    fake = FakeThousandSms()
    async with rewritten(
        fake, "get_msg_report", setting(start_time=value, last_update=value)
    ) as sms:
        message_id = await _sent(sms)
        report = await sms.status(message_id)
        (many,) = await sms.status_many([message_id])
    assert report.state is DeliveryState.QUEUED
    assert (report.start_time, report.last_update) == (None, None)
    assert many.state is DeliveryState.SENT
    assert many.error is None
    assert (many.start_time, many.last_update) == (None, None)


async def test_a_numeric_timestamp_in_a_report_is_read_as_a_date() -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "get_msg_report", setting(start_time=1.5e9)) as sms:
        report = await sms.status(await _sent(sms))
    assert report.state is DeliveryState.QUEUED
    # 1.5e9 s after the epoch: 2017-07-14 02:40:00 UTC.
    assert report.start_time == datetime(2017, 7, 14, 5, 40, tzinfo=MSK)


async def test_tracking_goes_on_through_reports_with_dates_at_the_edge_of_the_range() -> None:
    fake = FakeThousandSms()
    edge = setting(start_time="0001-01-01T00:00:00+03:00", last_update="0001-01-01T00:00:00Z")
    async with (
        rewritten(fake, "get_msg_report", edge) as sms,
        aiosms.Batcher(sms) as batcher,
    ):
        message_id = await _sent(sms)
        with anyio.fail_after(10):
            states = [r.state async for r in batcher.track([message_id], interval=0.01)]
    assert states == [DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DELIVERED]


@pytest.mark.parametrize(
    "field", ["n_raw_sms", "credits", "sender_name", "text", "phone", "type", "state_text", "id"]
)
async def test_a_report_keeps_its_state_whatever_its_other_fields_hold(field: str) -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "get_msg_report", setting(**{field: {"odd": [1.5]}})) as sms:
        report = await sms.status(await _sent(sms))
    assert report.state is DeliveryState.QUEUED
    assert report.error is None


async def test_a_report_price_that_would_overflow_a_cost_is_left_out() -> None:
    fake = FakeThousandSms()
    async with rewritten(fake, "get_msg_report", setting(credits="9e999999")) as sms:
        report = await sms.status(await _sent(sms))
    assert report.price_per_part is None
    assert report.cost is None
    assert report.state is DeliveryState.QUEUED
