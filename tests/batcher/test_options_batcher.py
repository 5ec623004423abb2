"""The Batcher's options and ``track``'s are checked as finite and in range.

Each refusal is a ``ValidationError`` naming the option, raised before any request:
NaN compares false with everything, so an unchecked ``linger=nan`` once killed the
Batcher's task group and ``rate=nan`` silently turned the limit off; ``track``'s
``interval=0`` polled the gateway without pause. bool is not a number.
"""

from __future__ import annotations

import math
from decimal import Decimal

import anyio
import pytest

import aiosms
from aiosms import Batcher, DeliveryState, Message
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

SENDER = "MyShop"
NAN, INF = math.nan, math.inf

NOT_POSITIVE_INTS = [0, -1, True, False, 1.5, 2.0, "10", None, NAN, INF]
NOT_NON_NEGATIVE_SECONDS = [NAN, INF, -INF, -0.001, -1, True, False, "0.1", None, Decimal("0.1")]
NOT_POSITIVE_NUMBERS = [NAN, INF, -INF, 0, 0.0, -1, True, False, "5"]


def client() -> aiosms.MySms:
    return FakeMySms().client(sender=SENDER)


@pytest.mark.parametrize("option", ["max_batch_size", "max_pending"])
@pytest.mark.parametrize("value", NOT_POSITIVE_INTS, ids=repr)
def test_sizes_must_be_positive_ints(option: str, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Batcher(client(), **{option: value})  # type: ignore[arg-type]
    assert caught.value.field == option


@pytest.mark.parametrize("value", [v for v in NOT_POSITIVE_INTS if v is not None], ids=repr)
def test_max_concurrency_must_be_a_positive_int_or_none(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Batcher(client(), max_concurrency=value)  # type: ignore[arg-type]
    assert caught.value.field == "max_concurrency"


@pytest.mark.parametrize("value", NOT_NON_NEGATIVE_SECONDS, ids=repr)
def test_linger_must_be_a_finite_non_negative_number_of_seconds(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Batcher(client(), linger=value)  # type: ignore[arg-type]
    assert caught.value.field == "linger"


@pytest.mark.parametrize("value", NOT_POSITIVE_NUMBERS, ids=repr)
def test_rate_must_be_a_finite_positive_number_or_none(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        Batcher(client(), rate=value)  # type: ignore[arg-type]
    assert caught.value.field == "rate"
    assert "rate" in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"linger": 0},
        {"linger": 0.0},
        {"linger": 2},
        {"rate": None},
        {"rate": 0.5},
        {"rate": 100},
        {"max_concurrency": None},
        {"max_batch_size": 1, "max_pending": 1, "max_concurrency": 1},
    ],
    ids=repr,
)
def test_options_in_range_are_accepted(options: dict[str, object]) -> None:
    batcher = Batcher(client(), **options)  # type: ignore[arg-type]
    for name, value in options.items():
        if value is not None and name != "max_concurrency":
            assert getattr(batcher, name) == value


async def test_a_batcher_with_zero_linger_and_a_rate_still_sends() -> None:
    fake = FakeMySms(balance=Decimal(1000))
    async with (
        fake.client(sender=SENDER) as sms,
        Batcher(sms, linger=0, rate=1000, max_batch_size=2) as batcher,
    ):
        receipt = await batcher.send(Message(to="79112223333", text="Hi"))
    assert receipt.state is DeliveryState.QUEUED
    assert [e.phone for e in fake.ledger] == ["79112223333"]


# -- track ---------------------------------------------------------------------------


async def track_once(**options: object) -> aiosms.ValidationError:
    """Start tracking one id with these options; return the refusal, checking that
    the gateway was never asked."""
    fake = FakeMySms()
    async with fake.client(sender=SENDER) as sms, Batcher(sms) as batcher:
        with anyio.fail_after(5), pytest.raises(aiosms.ValidationError) as caught:
            await anext(batcher.track(["some-id"], **options))  # type: ignore[arg-type]
    assert fake.calls == []
    return caught.value


@pytest.mark.parametrize("value", NOT_POSITIVE_NUMBERS, ids=repr)
async def test_track_interval_must_be_a_finite_positive_number(value: object) -> None:
    assert (await track_once(interval=value)).field == "interval"


@pytest.mark.parametrize("value", NOT_POSITIVE_NUMBERS, ids=repr)
async def test_track_max_interval_must_be_a_finite_positive_number(value: object) -> None:
    assert (await track_once(max_interval=value)).field == "max_interval"


async def test_track_max_interval_must_not_be_below_interval() -> None:
    error = await track_once(interval=10, max_interval=5)
    assert error.field == "max_interval"
    assert "interval" in error.rule


@pytest.mark.parametrize("value", NOT_POSITIVE_NUMBERS, ids=repr)
async def test_track_deadline_must_be_a_finite_positive_number_or_none(value: object) -> None:
    assert (await track_once(deadline=value)).field == "deadline"


async def test_track_without_a_deadline_still_ends_when_every_state_is_final() -> None:
    fake = FakeMySms(balance=Decimal(1000))
    async with fake.client(sender=SENDER) as sms, Batcher(sms, linger=0) as batcher:
        receipt = await batcher.send(Message(to="79112223333", text="Hi"))
        assert receipt.message_id is not None
        fake.set_state(receipt.message_id, 4)
        with anyio.fail_after(5):
            reports = [r async for r in batcher.track([receipt], interval=0.01, deadline=None)]
    assert [r.state for r in reports] == [DeliveryState.DELIVERED]


async def test_an_async_on_receipt_hook_is_refused(fake_mysms: FakeMySms) -> None:
    async def hook(receipt: aiosms.Receipt) -> None:
        pass

    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Batcher(fake_mysms.client(), on_receipt=hook)  # type: ignore[arg-type]
    assert caught.value.field == "on_receipt"
