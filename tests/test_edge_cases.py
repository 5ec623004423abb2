"""Edge cases at the seams: odd replies, closing mid-flight, pickling, races at close."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import httpx
import pytest
from support import msg

import aiosms
from aiosms import DeliveryState, Message
from aiosms._transport import provably_unsent
from aiosms.testing import FakeMySms, FakeThousandSms

pytestmark = pytest.mark.anyio

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


def mysms_replying(body: bytes, **options: object) -> aiosms.MySms:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    return aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(reply),
        retry=FAST,
        **options,  # type: ignore[arg-type]
    )


# -- my-sms replies ---------------------------------------------------------------------


async def test_a_refusal_with_null_data_is_the_typed_refusal_not_an_unknown_outcome() -> None:
    async with mysms_replying(b'{"state": "-1", "data": null}') as sms:
        with pytest.raises(aiosms.AuthenticationError):
            await sms.send(msg())
        with pytest.raises(aiosms.AuthenticationError):
            await sms.status("abc")


async def test_status_replies_in_another_order_are_matched_by_id() -> None:
    body = b'{"state":"0","data":[{"id":"b","state":"4"},{"id":"a","state":"2"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
    assert [(r.message_id, r.state) for r in reports] == [
        ("a", DeliveryState.QUEUED),
        ("b", DeliveryState.DELIVERED),
    ]


async def test_a_status_entry_for_an_id_not_asked_about_is_never_used() -> None:
    body = b'{"state":"0","data":[{"id":"x","state":"4"},{"id":"y","state":"4"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
        with pytest.raises(aiosms.ProtocolError):
            await sms.status("a")
    assert [r.state for r in reports] == [DeliveryState.UNKNOWN, DeliveryState.UNKNOWN]
    assert all(isinstance(r.error, aiosms.ProtocolError) for r in reports)


async def test_a_status_entry_with_a_blank_id_is_matched_by_position_when_counts_agree() -> None:
    body = b'{"state":"0","data":[{"id":"a","state":"3"},{"id":"","state":"-10"}]}'
    async with mysms_replying(body) as sms:
        reports = await sms.status_many(["a", "b"])
    assert [r.state for r in reports] == [DeliveryState.SENT, DeliveryState.REJECTED]
    assert isinstance(reports[1].error, aiosms.MessageNotFoundError)


async def test_a_json_reply_with_a_byte_order_mark_is_read() -> None:
    body = '\ufeff{"state":"0","data":[{"id":"a","state":"2"}]}'.encode()
    async with mysms_replying(body) as sms:
        receipt = await sms.send(msg())
    assert receipt.message_id == "a"


async def test_a_reply_whose_compression_is_broken_is_an_unknown_outcome_on_a_send() -> None:
    calls: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, content=b"not gzip", headers={"content-encoding": "gzip"})

    async with aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(reply),
        retry=FAST,
        method="GET",
    ) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as read_error:
            await sms.balance()
    assert send_error.value.kind == "DecodingError"
    assert read_error.value.kind == "DecodingError"
    # Sent once; the read was retried.
    assert calls.count("/rest/sms/send/json") == 1
    assert calls.count("/rest/sms/credit/json") == 3
    # Nothing of the request (whose GET URL holds the password) rides on the error.
    assert "test-password" not in repr(vars(send_error.value))
    assert send_error.value.__cause__ is None
    assert send_error.value.__context__ is None
    assert gzip  # the body above is deliberately not gzip


async def test_a_price_gives_receipts_a_cost_of_price_times_parts(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client(sender="MyShop", price=Decimal("2.10")) as sms:
        short = await sms.send(msg("Hi"))
        long = await sms.send(msg("Ж" * 150))
    assert short.cost == Decimal("2.10")
    assert long.cost == Decimal("6.30")


async def test_a_bad_price_is_refused() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.MySms(username="u", password="p", price="-1")
    assert caught.value.field == "price"


# -- closing --------------------------------------------------------------------------


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


async def test_a_source_woken_as_the_batcher_closes_gets_a_receipt_and_a_closed_error() -> None:
    fake = FakeMySms()
    go = anyio.Event()
    got: list[str] = []

    async def source() -> AsyncIterator[Message]:
        yield msg("first")
        await go.wait()
        yield msg("second")

    async def consume(batcher: aiosms.Batcher) -> None:
        try:
            async for receipt in batcher.send_all(source()):
                got.append(receipt.state.value)
        except aiosms.ClosedError:
            got.append("closed")

    async with fake.client(sender="MyShop") as sms:
        with anyio.fail_after(5):
            async with (
                anyio.create_task_group() as outer,
                aiosms.Batcher(sms, max_batch_size=1, linger=0) as batcher,
            ):
                outer.start_soon(consume, batcher)
                while not got:
                    await anyio.sleep(0.01)
                go.set()
    assert got == ["queued", "rejected", "closed"]
    assert [e.text for e in fake.ledger] == ["first"]


# -- the Batcher's own checks ---------------------------------------------------------


async def test_an_async_on_receipt_hook_is_refused(fake_mysms: FakeMySms) -> None:
    async def hook(receipt: aiosms.Receipt) -> None:
        pass

    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Batcher(fake_mysms.client(), on_receipt=hook)  # type: ignore[arg-type]
    assert caught.value.field == "on_receipt"


async def test_tracking_a_bad_id_fails_at_once(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client() as sms, aiosms.Batcher(sms) as batcher:
        with anyio.fail_after(2), pytest.raises(aiosms.ValidationError):
            async for _ in batcher.track([""], interval=0.01):
                pass


async def test_tracking_stops_on_a_refusal_that_would_repeat() -> None:
    fake = FakeMySms(password="other-password")
    async with fake.client(password="test-password") as sms, aiosms.Batcher(sms) as batcher:
        with anyio.fail_after(2), pytest.raises(aiosms.AuthenticationError):
            async for _ in batcher.track(["abc"], interval=0.01):
                pass


def test_a_batcher_over_the_aiohttp_transport_refuses_to_start_under_trio() -> None:
    async def under_trio() -> None:
        sms = aiosms.ThousandSms(email="a@b.c", password="p", transport="aiohttp")
        async with aiosms.Batcher(sms):
            pass

    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(under_trio, backend="trio")


# -- what proves a request unsent -----------------------------------------------------


def _disconnect() -> None:
    raise httpx.RemoteProtocolError("Server disconnected")


def _map_without_from() -> None:
    try:
        _disconnect()
    except httpx.RemoteProtocolError:
        raise httpx.ConnectTimeout("mapped without from") from None


def test_a_connect_error_raised_while_handling_another_failure_is_not_proof() -> None:
    try:
        _map_without_from()
    except httpx.ConnectTimeout as exc:
        mapped = exc
    # "from None" hides the context from tracebacks but does not erase it.
    assert not provably_unsent(mapped)


# -- errors cross process boundaries ----------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        aiosms.ValidationError("to", "must have 10 to 15 digits"),
        aiosms.TransportError("refused", kind="ConnectError", may_have_been_sent=False),
        aiosms.DeliveryUnknownError("lost", messages=[msg()], kind="ReadTimeout"),
        aiosms.InsufficientFundsError(provider="my-sms", code=-13, text="no money"),
        aiosms.ClosedError("closed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_survives_pickling(error: aiosms.SmsError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert copy.may_have_been_sent is error.may_have_been_sent


async def test_the_1000sms_client_keeps_no_readable_password_after_sending(
    fake_thousandsms: FakeThousandSms,
) -> None:
    sms = fake_thousandsms.client(password="S3cr3t-XYZ", sender="sms-tester")
    fake_thousandsms.password = "S3cr3t-XYZ"
    async with sms:
        await sms.send(msg())
    assert "S3cr3t-XYZ" not in repr(vars(sms))


# -- my-sms JSON packets ----------------------------------------------------------------


async def test_a_refusal_of_the_whole_request_decides_even_when_its_data_is_junk() -> None:
    # The request status is the gateway's answer for the packet; entries it cannot
    # have processed do not make the refusal an unknown outcome.
    async with mysms_replying(b'{"state": "-13", "data": "junk"}') as sms:
        with pytest.raises(aiosms.InsufficientFundsError) as refused:
            await sms.send(msg())
    assert refused.value.may_have_been_sent is False


async def test_one_unreadable_entry_makes_the_whole_accepted_packet_unknown() -> None:
    body = b'{"state":"0","data":[{"id":"a","state":"2"},{"id":"b"},{"id":"c","state":"2"}]}'
    async with mysms_replying(body) as sms:
        receipts = await sms.send_many([msg("one"), msg("two"), msg("three")])
    assert [r.state for r in receipts] == [DeliveryState.UNKNOWN] * 3
    assert all(isinstance(r.error, aiosms.DeliveryUnknownError) for r in receipts)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_packet_mixing_message_and_client_senders_carries_each_exactly(
    fmt: str,
) -> None:
    fake = FakeMySms(senders=["MyShop", 'Say "Hi"', "O'Hara"])
    senders = [None, 'Say "Hi"', None, "O'Hara", "MyShop"]
    messages = [msg(f"text {n}", sender=s) for n, s in enumerate(senders)]
    async with fake.client(sender="MyShop", format=fmt) as sms:
        receipts = await sms.send_many(messages)
    expected = [s or "MyShop" for s in senders]
    assert [r.sender for r in receipts] == expected
    assert [(e.sender, e.text) for e in fake.ledger] == [
        (s, f"text {n}") for n, s in enumerate(expected)
    ]
