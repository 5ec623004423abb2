"""The clients' options and ``RetryPolicy``'s fields are checked as finite and in range.

Each refusal is a ``ValidationError`` naming the option (for a part of an
``httpx.Timeout`` or ``httpx.Limits``, ``timeout.read`` say), raised when the client
is built or, for a per-call timeout, before any request: an unchecked
``timeout=nan`` once reported messages that never left as unknown outcomes.
bool is not a number.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import httpx
import pytest

import aiosms
from aiosms import Message, RetryPolicy
from aiosms.testing import FakeMySms, FakeThousandSms

NAN, INF = math.nan, math.inf

NOT_POSITIVE_INTS = [0, -1, True, False, 1.5, 2.0, "10", None, NAN]
NOT_POSITIVE_SECONDS = [NAN, INF, -INF, 0, 0.0, -1, True, False, "5"]


def mysms(**options: Any) -> aiosms.MySms:
    return aiosms.MySms(username="u", password="p", **options)


def thousandsms(**options: Any) -> aiosms.ThousandSms:
    return aiosms.ThousandSms(email="me@example.com", password="p", **options)


CLIENTS = [mysms, thousandsms]


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("value", NOT_POSITIVE_SECONDS, ids=repr)
def test_timeout_must_be_a_finite_positive_number_of_seconds(make: Any, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        make(timeout=value)
    assert caught.value.field == "timeout"


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("phase", ["connect", "read", "write", "pool"])
@pytest.mark.parametrize("value", [NAN, INF, 0.0, -1.0], ids=repr)
def test_each_part_of_an_httpx_timeout_must_be_finite_and_positive(
    make: Any, phase: str, value: float
) -> None:
    parts: dict[str, float | None] = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    parts[phase] = value
    with pytest.raises(aiosms.ValidationError) as caught:
        make(timeout=httpx.Timeout(**parts))
    assert caught.value.field == f"timeout.{phase}"


@pytest.mark.parametrize("make", CLIENTS)
def test_an_httpx_timeout_with_parts_switched_off_is_accepted(make: Any) -> None:
    make(timeout=httpx.Timeout(5.0, pool=None))
    make(timeout=httpx.Timeout(None))


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("value", [1, 2.5, 30])
def test_a_finite_positive_timeout_is_accepted(make: Any, value: float) -> None:
    make(timeout=value)


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("value", NOT_POSITIVE_INTS, ids=repr)
def test_max_concurrency_must_be_a_positive_int(make: Any, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        make(max_concurrency=value)
    assert caught.value.field == "max_concurrency"


@pytest.mark.parametrize("value", NOT_POSITIVE_INTS, ids=repr)
def test_mysms_packet_size_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        mysms(packet_size=value)
    assert caught.value.field == "packet_size"


@pytest.mark.parametrize(
    "value",
    [NAN, INF, -INF, "nan", "inf", "-1", -1, Decimal("NaN"), Decimal("sNaN"), True, "abc", []],
    ids=repr,
)
def test_mysms_price_must_be_a_finite_non_negative_amount(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        mysms(price=value)
    assert caught.value.field == "price"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("2.50"), Decimal("2.50")),
        (0, Decimal(0)),
        ("1.5", Decimal("1.5")),
        (0.1, Decimal("0.1")),
    ],
    ids=repr,
)
def test_mysms_price_in_range_is_kept_as_a_decimal(value: object, expected: Decimal) -> None:
    assert mysms(price=value).price == expected


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (httpx.Limits(max_connections=0), "limits.max_connections"),
        (httpx.Limits(max_connections=-5), "limits.max_connections"),
        (httpx.Limits(max_keepalive_connections=-1), "limits.max_keepalive_connections"),
        (httpx.Limits(keepalive_expiry=NAN), "limits.keepalive_expiry"),
        (httpx.Limits(keepalive_expiry=-1.0), "limits.keepalive_expiry"),
        ("10", "limits"),
        (10, "limits"),
    ],
    ids=repr,
)
def test_pool_limits_must_be_in_range(make: Any, limits: object, field: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        make(limits=limits)
    assert caught.value.field == field


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("value", [{"read_retries": 1}, "none", 3], ids=repr)
def test_retry_must_be_a_retry_policy_or_none(make: Any, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        make(retry=value)
    assert caught.value.field == "retry"


# -- per-call timeouts ----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("value", [NAN, INF, 0, -1, True], ids=repr)
async def test_a_bad_per_call_timeout_is_refused_before_any_request(value: object) -> None:
    mine = FakeMySms(balance=Decimal(100))
    theirs = FakeThousandSms()
    message = Message(to="79112223333", text="Hi")
    calls: list[tuple[str, tuple[object, ...]]] = [
        ("send", (message,)),
        ("send_many", ([message],)),
        ("status", ("some-id",)),
        ("status_many", (["some-id"],)),
        ("balance", ()),
    ]
    async with mine.client(sender="MyShop") as a, theirs.client(sender="sms-tester") as b:
        for sms in (a, b):
            for name, args in calls:
                with pytest.raises(aiosms.ValidationError) as caught:
                    await getattr(sms, name)(*args, timeout=value)
                assert caught.value.field == "timeout", name
    assert mine.calls == []
    assert theirs.calls == []


# -- RetryPolicy ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["read_retries", "send_retries"])
@pytest.mark.parametrize("value", [-1, True, False, 1.5, NAN, INF, "2", None], ids=repr)
def test_retry_counts_must_be_non_negative_ints(field: str, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize("field", ["initial_delay", "max_delay", "max_retry_after"])
@pytest.mark.parametrize("value", [NAN, INF, -INF, -0.5, True, "1", None], ids=repr)
def test_retry_delays_must_be_finite_non_negative_seconds(field: str, value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize("value", [NAN, INF, -0.1, 1.01, 2, True], ids=repr)
def test_retry_jitter_must_be_a_fraction_from_0_to_1(value: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        RetryPolicy(jitter=value)  # type: ignore[arg-type]
    assert caught.value.field == "jitter"


def test_a_retry_policy_refusal_is_still_a_value_error() -> None:
    with pytest.raises(ValueError, match="read_retries"):
        RetryPolicy(read_retries=-1)


@pytest.mark.parametrize(
    "fields",
    [
        {"read_retries": 0, "send_retries": 0},
        {"initial_delay": 0, "max_delay": 0, "max_retry_after": 0, "jitter": 0},
        {"jitter": 1},
        {"initial_delay": 0.1, "max_delay": 2},
    ],
    ids=repr,
)
def test_retry_policies_in_range_are_accepted(fields: dict[str, float]) -> None:
    policy = RetryPolicy(**fields)  # type: ignore[arg-type]
    for name, value in fields.items():
        assert getattr(policy, name) == value


def test_a_retry_wait_stays_within_max_delay_however_many_attempts() -> None:
    policy = RetryPolicy(read_retries=10_000, initial_delay=0.5, max_delay=8.0, jitter=0)
    assert policy.delay(5000) == 8.0


@pytest.mark.parametrize("retry_after", [NAN, INF, -5.0], ids=repr)
def test_a_retry_after_that_is_not_a_finite_wait_never_makes_a_bad_sleep(
    retry_after: float,
) -> None:
    policy = RetryPolicy(max_retry_after=30.0, max_delay=8.0, initial_delay=0.5, jitter=0)
    wait = policy.delay(0, retry_after)
    assert math.isfinite(wait)
    assert 0 <= wait <= 30.0


def test_a_bad_price_is_refused() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.MySms(username="u", password="p", price="-1")
    assert caught.value.field == "price"
