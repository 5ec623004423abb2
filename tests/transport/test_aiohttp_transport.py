"""The optional aiohttp transport: asyncio only, never a duplicate send."""

from __future__ import annotations

import socket

import aiohttp
import anyio
import pytest
from support import msg

import aiosms
from aiosms._aiohttp import _provably_unsent
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

pytestmark = pytest.mark.anyio

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only (the trio refusal is tested below, synchronously)."""
    return "asyncio"


async def test_every_1000sms_call_works_over_aiohttp(fake_thousandsms: FakeThousandSms) -> None:
    async with fake_thousandsms.serve() as base_url:
        for fmt in ("json", "xml"):
            async with fake_thousandsms.client(
                base_url=base_url, sender="sms-tester", transport="aiohttp", format=fmt
            ) as sms:
                receipt = await sms.send(msg())
                report = await sms.status(receipt.message_id or "")
                profile = await sms.profile()
                balance = await sms.balance()
            assert report.message_id == receipt.message_id
            assert profile.email == fake_thousandsms.email
            assert balance.amount == fake_thousandsms.balance
    assert len(fake_thousandsms.ledger) == 2


async def test_every_mysms_call_works_over_aiohttp(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.serve() as base_url:
        for fmt in ("json", "xml"):
            async with fake_mysms.client(
                base_url=base_url, sender="MyShop", transport="aiohttp", format=fmt
            ) as sms:
                receipts = await sms.send_many([msg("a"), msg("b")], timeout=5)
                reports = await sms.status_many([r.message_id or "" for r in receipts])
                balance = await sms.balance()
            assert [r.state for r in reports] == [aiosms.DeliveryState.QUEUED] * 2
            assert balance.amount == fake_mysms.balance
    assert [e.text for e in fake_mysms.ledger] == ["a", "b", "a", "b"]


async def test_get_is_refused_on_the_aiohttp_transport() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.ThousandSms(email="a@b.c", password="p", method="GET", transport="aiohttp")
    assert caught.value.field == "method"


async def test_an_unknown_transport_name_is_refused() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.MySms(username="u", password="p", transport="curl")  # type: ignore[arg-type]
    assert caught.value.field == "transport"


async def test_a_connection_dropped_after_the_gateway_read_the_request_is_never_resent(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.reset_after(), endpoint="push_msg")
    async with (
        fake_thousandsms.serve() as base_url,
        fake_thousandsms.client(
            base_url=base_url, sender="sms-tester", transport="aiohttp", retry=FAST
        ) as sms,
    ):
        # A kept-alive connection first, so aiohttp would have a reason to retry.
        await sms.profile()
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg("dropped"))
    assert caught.value.may_have_been_sent
    assert fake_thousandsms.received["push_msg"] == 1
    assert [e.text for e in fake_thousandsms.ledger] == ["dropped"]


async def test_a_stalled_reply_times_out_as_an_unknown_outcome(
    fake_thousandsms: FakeThousandSms,
) -> None:
    fake_thousandsms.faults.add(Fault.stall(30), endpoint="push_msg")
    async with (
        fake_thousandsms.serve() as base_url,
        fake_thousandsms.client(
            base_url=base_url, sender="sms-tester", transport="aiohttp", retry=FAST
        ) as sms,
    ):
        with anyio.fail_after(5), pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg(), timeout=0.3)
    assert caught.value.kind == "SocketTimeoutError"
    assert fake_thousandsms.received["push_msg"] == 1


async def test_a_refused_connection_is_reported_as_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiosms.ThousandSms(
        email="a@b.c",
        password="test-password",
        sender="sms-tester",
        base_url=f"http://127.0.0.1:{port}/",
        transport="aiohttp",
        retry=FAST,
    ) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(msg())
    assert caught.value.may_have_been_sent is False
    assert caught.value.kind == "ClientConnectorError"


async def test_a_caller_supplied_session_is_never_closed(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.serve() as base_url, aiohttp.ClientSession() as session:
        transport = aiosms.AiohttpTransport(session=session)
        async with fake_thousandsms.client(base_url=base_url, transport=transport) as sms:
            await sms.profile()
        assert not session.closed


async def test_closing_the_client_closes_every_connection(
    fake_thousandsms: FakeThousandSms,
) -> None:
    async with fake_thousandsms.serve() as base_url:
        async with fake_thousandsms.client(
            base_url=base_url, sender="sms-tester", transport="aiohttp", max_concurrency=5
        ) as sms:
            await sms.send_many([msg(str(i)) for i in range(20)])
            assert fake_thousandsms.open_connections > 0
        with anyio.fail_after(5):
            while fake_thousandsms.open_connections:
                await anyio.sleep(0.01)
    assert fake_thousandsms.open_connections == 0


def test_only_a_failure_to_connect_proves_a_request_unsent() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 80, False, True, None, None, None)
    assert _provably_unsent(aiohttp.ClientConnectorError(key, OSError(111, "refused")))
    assert _provably_unsent(aiohttp.ConnectionTimeoutError())
    assert not _provably_unsent(aiohttp.ServerDisconnectedError())
    assert not _provably_unsent(aiohttp.SocketTimeoutError())
    assert not _provably_unsent(aiohttp.ClientOSError(104, "reset"))
    assert not _provably_unsent(aiohttp.ClientPayloadError())


def test_the_aiohttp_transport_refuses_to_run_under_trio() -> None:
    async def under_trio() -> None:
        async with aiosms.ThousandSms(
            email="a@b.c", password="p", sender="sms-tester", transport="aiohttp"
        ) as sms:
            await sms.profile()

    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(under_trio, backend="trio")


def test_a_batcher_over_the_aiohttp_transport_refuses_to_start_under_trio() -> None:
    async def under_trio() -> None:
        sms = aiosms.ThousandSms(email="a@b.c", password="p", transport="aiohttp")
        async with aiosms.Batcher(sms):
            pass

    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(under_trio, backend="trio")
