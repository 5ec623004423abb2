"""Transport, lifecycle and retry policy: what happens when the network misbehaves."""

from __future__ import annotations

import math
import socket
import types

import anyio
import httpcore
import httpx
import pytest
from support import msg

import aiosms
from aiosms._transport import parse_retry_after, provably_unsent
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio

FAST = aiosms.RetryPolicy(initial_delay=0.0, max_retry_after=0.0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def wait_until_closed(fake: FakeMySms) -> None:
    with anyio.fail_after(5):
        while fake.open_connections:
            await anyio.sleep(0.01)


# -- lifecycle --------------------------------------------------------------------------


async def test_entering_a_client_twice_is_a_clear_error(fake_mysms: FakeMySms) -> None:
    sms = fake_mysms.client()
    async with sms:
        with pytest.raises(RuntimeError, match="already open"):
            await sms.__aenter__()


async def test_a_closed_client_refuses_work_and_reentry(fake_mysms: FakeMySms) -> None:
    sms = fake_mysms.client(sender="MyShop")
    async with sms:
        pass
    assert sms.closed
    with pytest.raises(RuntimeError, match="closed"):
        await sms.send(msg())
    with pytest.raises(RuntimeError, match="closed"):
        await sms.balance()
    with pytest.raises(RuntimeError, match="closed"):
        async with sms:
            pass
    assert sum(fake_mysms.received.values()) == 0


async def test_aclose_twice_is_harmless(fake_mysms: FakeMySms) -> None:
    sms = fake_mysms.client()
    await sms.aclose()
    await sms.aclose()
    assert sms.closed


async def test_a_client_works_without_a_context_manager(fake_mysms: FakeMySms) -> None:
    sms = fake_mysms.client(sender="MyShop")
    try:
        receipt = await sms.send(msg())
    finally:
        await sms.aclose()
    assert receipt.message_id == fake_mysms.ledger[0].id


async def test_a_caller_supplied_http_client_is_used_and_never_closed(
    fake_mysms: FakeMySms,
) -> None:
    async with httpx.AsyncClient(transport=fake_mysms.httpx_transport()) as http:
        async with aiosms.MySms(
            username=fake_mysms.username,
            password=fake_mysms.password,
            base_url=fake_mysms.base_url,
            http_client=http,
        ) as sms:
            balance = await sms.balance()
        assert not http.is_closed
        assert balance.amount == fake_mysms.balance


async def test_only_one_way_of_giving_a_transport_is_accepted(fake_mysms: FakeMySms) -> None:
    with pytest.raises(aiosms.ValidationError):
        aiosms.MySms(
            username="u",
            password="p",
            http_client=httpx.AsyncClient(),
            http_transport=fake_mysms.httpx_transport(),
        )


async def test_default_timeouts_are_all_bounded() -> None:
    timeout = aiosms.DEFAULT_TIMEOUT
    for value in (timeout.connect, timeout.read, timeout.write, timeout.pool):
        assert value is not None
        assert math.isfinite(value)
        assert value > 0


# -- redirects --------------------------------------------------------------------------


async def test_a_redirect_is_never_followed() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(302, headers={"location": "http://elsewhere.test/"})

    async with aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(handler),
        retry=FAST,
    ) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.balance()
    assert caught.value.status_code == 302
    assert [c.url.host for c in calls] == ["fake.test", "fake.test"]


async def test_a_cookie_set_by_the_gateway_is_never_sent_back() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, headers={"set-cookie": "session=abc; Path=/"})

    async with aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url="http://fake.test/rest/sms/",
        http_transport=httpx.MockTransport(handler),
        retry=FAST,
    ) as sms:
        for _ in range(2):
            with pytest.raises(aiosms.TransportError):
                await sms.balance()
    assert len(calls) == 2
    assert [c.headers.get("cookie") for c in calls] == [None, None]


# -- sends: never twice -----------------------------------------------------------------


async def test_a_send_whose_reply_times_out_reaches_the_gateway_once(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.stall(5), endpoint="send")
    async with fake_mysms.client(sender="MyShop", retry=FAST) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg(), timeout=0.2)
    assert caught.value.kind == "ReadTimeout"
    assert fake_mysms.received["send"] == 1


async def test_a_refused_connection_is_retried_for_a_send(fake_mysms: FakeMySms) -> None:
    fake_mysms.faults.add(Fault.refuse(), times=2, endpoint="send")
    async with fake_mysms.client(sender="MyShop", retry=FAST) as sms:
        receipt = await sms.send(msg())
    assert fake_mysms.received["send"] == 3
    assert [e.id for e in fake_mysms.ledger] == [receipt.message_id]


async def test_a_send_that_is_refused_every_time_is_a_not_sent_transport_error(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.refuse(), times=3, endpoint="send")
    async with fake_mysms.client(sender="MyShop", retry=FAST) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.send(msg())
    assert caught.value.may_have_been_sent is False
    assert caught.value.kind == "ConnectError"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_send_answered_with_5xx_is_unknown_and_not_retried(
    fake_mysms: FakeMySms, status: int
) -> None:
    fake_mysms.faults.add(Fault.http_status(status, retry_after="0"), endpoint="send")
    async with fake_mysms.client(sender="MyShop", retry=FAST) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError) as caught:
            await sms.send(msg())
    assert caught.value.kind == f"HTTP {status}"
    assert fake_mysms.received["send"] == 1


@pytest.mark.parametrize(
    "fault", [Fault.truncated(), Fault.empty(), Fault.html(), Fault.malformed()], ids=str
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_an_unreadable_reply_is_unknown_on_a_send_and_a_protocol_error_on_a_read(
    fake_mysms: FakeMySms, fault: Fault, fmt: str
) -> None:
    fake_mysms.faults.add(fault, endpoint="send")
    fake_mysms.faults.add(fault, times=3, endpoint="credit")
    async with fake_mysms.client(sender="MyShop", format=fmt, retry=FAST) as sms:
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(msg())
        with pytest.raises(aiosms.ProtocolError):
            await sms.balance()
    # The send was done by the gateway before the reply broke: it is in the ledger,
    # and aiosms did not send it again.
    assert len(fake_mysms.ledger) == 1
    assert fake_mysms.received["send"] == 1


# -- reads: retried ---------------------------------------------------------------------


async def test_status_is_retried_on_5xx(fake_mysms: FakeMySms) -> None:
    async with fake_mysms.client(sender="MyShop", retry=FAST) as sms:
        receipt = await sms.send(msg())
        fake_mysms.faults.add(Fault.http_status(503, retry_after="0"), times=2, endpoint="status")
        report = await sms.status(receipt.message_id or "")
    assert report.state is aiosms.DeliveryState.QUEUED
    assert fake_mysms.received["status"] == 3


async def test_reads_give_up_after_the_configured_retries(fake_mysms: FakeMySms) -> None:
    fake_mysms.faults.add(Fault.http_status(502), times=10, endpoint="credit")
    policy = aiosms.RetryPolicy(read_retries=4, initial_delay=0.0)
    async with fake_mysms.client(retry=policy) as sms:
        with pytest.raises(aiosms.TransportError) as caught:
            await sms.balance()
    assert caught.value.status_code == 502
    assert fake_mysms.received["credit"] == 5


async def test_a_read_reset_by_the_gateway_is_retried(fake_mysms: FakeMySms) -> None:
    fake_mysms.faults.add(Fault.reset_after(), endpoint="credit")
    async with fake_mysms.client(retry=FAST) as sms:
        balance = await sms.balance()
    assert balance.amount == fake_mysms.balance
    assert fake_mysms.received["credit"] == 2


async def test_retry_after_is_honoured_up_to_its_cap() -> None:
    policy = aiosms.RetryPolicy(max_retry_after=5.0)
    assert policy.delay(0, retry_after=2.0) == 2.0
    assert policy.delay(0, retry_after=100.0) == 5.0


async def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = aiosms.RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=0.25)
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = policy.delay(attempt)
        assert base * 0.75 <= delay <= base


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- what proves a request unsent -------------------------------------------------------


def _mapped(cls: type[httpx.TransportError], cause: BaseException | None) -> BaseException:
    exc = cls("failed")
    exc.__cause__ = cause
    return exc


def _foreign(module: str, name: str) -> BaseException:
    foreign: type[Exception] = types.new_class(name, (Exception,))
    foreign.__module__ = module
    return foreign()


def test_a_connect_failure_from_httpcore_proves_a_request_unsent() -> None:
    assert provably_unsent(_mapped(httpx.ConnectError, httpcore.ConnectError()))
    assert provably_unsent(_mapped(httpx.ConnectTimeout, httpcore.ConnectTimeout()))
    assert provably_unsent(_mapped(httpx.PoolTimeout, httpcore.PoolTimeout()))
    assert provably_unsent(_mapped(httpx.ConnectError, None))


def test_a_server_disconnect_mapped_to_connect_timeout_is_not_proof() -> None:
    cause = _foreign("aiohttp.client_exceptions", "ServerDisconnectedError")
    assert not provably_unsent(_mapped(httpx.ConnectTimeout, cause))
    connector = _foreign("aiohttp.client_exceptions", "ClientConnectorError")
    assert provably_unsent(_mapped(httpx.ConnectError, connector))
    assert not provably_unsent(_mapped(httpx.ConnectError, _foreign("other", "Oops")))


def test_read_and_protocol_failures_are_never_proof() -> None:
    assert not provably_unsent(_mapped(httpx.ReadTimeout, None))
    assert not provably_unsent(_mapped(httpx.RemoteProtocolError, None))
    assert not provably_unsent(_mapped(httpx.WriteError, None))


# -- over a real loopback socket --------------------------------------------------------


async def test_over_loopback_a_reset_after_accepting_is_an_unknown_outcome_sent_once(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.reset_after(), endpoint="send")
    async with fake_mysms.serve() as base_url:
        async with aiosms.MySms(
            username=fake_mysms.username,
            password=fake_mysms.password,
            sender="MyShop",
            base_url=base_url,
            retry=FAST,
        ) as sms:
            with pytest.raises(aiosms.DeliveryUnknownError):
                await sms.send(msg())
            receipt = await sms.send(msg("after"))
        await wait_until_closed(fake_mysms)
    assert [e.text for e in fake_mysms.ledger] == ["Hello", "after"]
    assert fake_mysms.received["send"] == 2
    assert receipt.message_id == fake_mysms.ledger[1].id


async def test_over_loopback_a_reset_before_reading_is_unknown_but_not_in_the_ledger(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.reset_before(), endpoint="send")
    async with (
        fake_mysms.serve() as base_url,
        aiosms.MySms(
            username=fake_mysms.username,
            password=fake_mysms.password,
            sender="MyShop",
            base_url=base_url,
            retry=FAST,
        ) as sms,
    ):
        # The client cannot tell this from a drop after accepting: unknown.
        with pytest.raises(aiosms.DeliveryUnknownError):
            await sms.send(msg())
    assert fake_mysms.ledger == []
    assert fake_mysms.received["send"] == 1


async def test_over_loopback_a_stalled_gateway_times_out_within_the_bound(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.stall(30), endpoint="status")
    async with fake_mysms.serve() as base_url:
        async with aiosms.MySms(
            username=fake_mysms.username,
            password=fake_mysms.password,
            base_url=base_url,
            timeout=0.3,
            retry=aiosms.RetryPolicy(read_retries=0),
        ) as sms:
            with anyio.fail_after(5):
                with pytest.raises(aiosms.TransportError) as caught:
                    await sms.status("some-id")
        assert caught.value.kind == "ReadTimeout"
        await wait_until_closed(fake_mysms)


async def test_a_closed_port_is_retried_then_reported_as_not_sent() -> None:
    port = closed_port()
    async with aiosms.MySms(
        username="u",
        password="test-password",
        sender="MyShop",
        base_url=f"http://127.0.0.1:{port}/rest/sms/",
        retry=FAST,
    ) as sms:
        with pytest.raises(aiosms.TransportError) as send_error:
            await sms.send(msg())
        with pytest.raises(aiosms.TransportError) as read_error:
            await sms.balance()
    assert send_error.value.kind == "ConnectError"
    assert send_error.value.may_have_been_sent is False
    assert read_error.value.kind == "ConnectError"


async def test_cancelling_a_send_in_flight_leaks_no_connection() -> None:
    fake = FakeMySms(latency=1.0)
    async with fake.serve() as base_url:
        async with aiosms.MySms(
            username=fake.username, password=fake.password, sender="MyShop", base_url=base_url
        ) as sms:
            with anyio.move_on_after(0.2) as scope:
                await sms.send(msg())
            assert scope.cancelled_caught
            fake.latency = 0.0
            receipt = await sms.send(msg("second"))
        await wait_until_closed(fake)
    assert receipt.message_id is not None
    assert fake.open_connections == 0


async def test_a_send_that_waits_too_long_for_a_pooled_connection_is_not_sent(
    fake_mysms: FakeMySms,
) -> None:
    fake_mysms.faults.add(Fault.stall(3), endpoint="send")
    async with (
        fake_mysms.serve() as base_url,
        aiosms.MySms(
            username=fake_mysms.username,
            password=fake_mysms.password,
            sender="MyShop",
            base_url=base_url,
            limits=httpx.Limits(max_connections=1),
            timeout=httpx.Timeout(5.0, pool=0.2),
            retry=FAST,
        ) as sms,
    ):
        outcomes: list[BaseException] = []

        async def send(text: str) -> None:
            try:
                await sms.send(msg(text))
            except aiosms.SmsError as error:
                outcomes.append(error)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send, "holds the only connection")
                await anyio.sleep(0.1)
                await send("waits for the pool")
                tg.cancel_scope.cancel()
    (pool_error,) = outcomes
    assert isinstance(pool_error, aiosms.TransportError)
    assert pool_error.kind == "PoolTimeout"
    assert pool_error.may_have_been_sent is False
    assert fake_mysms.received["send"] == 1


# -- TLS settings -----------------------------------------------------------------------


def test_clients_share_one_verifying_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    aiosms.MySms(username="u", password="fake-password", sender="MyShop")

    # Once loaded, the CA bundle is never loaded again for another client.
    def no_second_load(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a client loaded the CA bundle again")

    monkeypatch.setattr(ssl, "create_default_context", no_second_load)
    aiosms.MySms(username="u", password="fake-password", sender="MyShop")
    aiosms.ThousandSms(email="a@example.com", password="fake-password", sender="MyShop")
    monkeypatch.undo()

    from aiosms._transport import default_ssl_context

    context = default_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0
