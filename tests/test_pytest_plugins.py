"""The shipped fixtures work under whichever async test plugin a user runs.

Each test writes a small user-style test file and runs it with pytest's own
``pytester``: under pytest-asyncio in strict mode and in auto mode, under anyio's
plugin on asyncio and trio, and in a plain sync test. The fixtures are loaded from
the package's ``pytest11`` entry point, as a user gets them.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

_INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
timeout = 30
"""

# One test per gateway: a real send over the loopback URL, checked in the fake's ledger.
_BODY = """
import pytest

import aiosms


{marker}
async def test_mysms_sends_over_the_loopback_fixture({params}fake_mysms, fake_mysms_url):
    async with aiosms.MySms(
        username=fake_mysms.username,
        password=fake_mysms.password,
        sender="MyShop",
        base_url=fake_mysms_url,
    ) as sms:
        receipt = await sms.send(aiosms.Message(to="+7 911 222-33-33", text="Hi"))
    assert [(e.id, e.phone) for e in fake_mysms.ledger] == [(receipt.message_id, "79112223333")]


{marker}
async def test_1000sms_sends_over_the_loopback_fixture(
    {params}fake_thousandsms, fake_thousandsms_url
):
    async with aiosms.ThousandSms(
        email=fake_thousandsms.email,
        password=fake_thousandsms.password,
        sender="sms-tester",
        base_url=fake_thousandsms_url,
    ) as sms:
        receipt = await sms.send(aiosms.Message(to="79160000000", text="Hi"))
    assert [(e.id, e.phone) for e in fake_thousandsms.ledger] == [
        (receipt.message_id, "79160000000")
    ]
"""


def _write(pytester: pytest.Pytester, *, mode: str, marker: str, params: str = "") -> None:
    pytester.makeini(_INI.format(mode=mode))
    pytester.makepyfile(test_user_code=_BODY.format(marker=marker, params=params))


def test_the_loopback_fixtures_work_under_pytest_asyncio_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    _write(pytester, mode="strict", marker="@pytest.mark.asyncio")
    result = pytester.runpytest("-p", "no:anyio")
    result.assert_outcomes(passed=2)


def test_the_loopback_fixtures_work_under_pytest_asyncio_auto_mode(
    pytester: pytest.Pytester,
) -> None:
    _write(pytester, mode="auto", marker="")
    result = pytester.runpytest("-p", "no:anyio")
    result.assert_outcomes(passed=2)


def test_the_loopback_fixtures_work_under_anyio_on_asyncio_and_trio(
    pytester: pytest.Pytester,
) -> None:
    _write(pytester, mode="strict", marker="@pytest.mark.anyio")
    pytester.makeconftest(
        """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*4 passed*"])


def test_the_loopback_fixtures_work_in_a_plain_sync_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(_INI.format(mode="strict"))
    pytester.makepyfile(
        test_sync_user_code="""
import anyio

import aiosms


def test_a_blocking_caller_reaches_the_fake(fake_mysms, fake_mysms_url):
    async def balance():
        async with aiosms.MySms(
            username=fake_mysms.username, password=fake_mysms.password, base_url=fake_mysms_url
        ) as sms:
            return await sms.balance()

    assert anyio.run(balance) == aiosms.Balance(fake_mysms.balance)
    assert [call.endpoint for call in fake_mysms.calls] == ["credit"]
"""
    )
    result = pytester.runpytest("-p", "no:anyio")
    result.assert_outcomes(passed=1)
