"""Input rules checked before anything reaches the wire.

Each function takes what the caller gave and returns the wire form, or raises
``ValidationError`` naming the field and the rule. Nothing here knows about HTTP.
Gateway-neutral rules (phone, text, dates, TTL) and each gateway's sender rules
live together so that the two gateways' differences are visible side by side.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import TypeVar

from aiosms._errors import ValidationError

T = TypeVar("T")

# my-sms documents Moscow time; Russia has kept UTC+3 without DST since 2014,
# so a fixed offset needs no tzdata on the user's machine.
MOSCOW = timezone(timedelta(hours=3), "MSK")

_PHONE_NOISE = str.maketrans("", "", " ()-\t.")
_LATIN_SENDER = re.compile(r"[A-Za-z0-9 .\-_!&'\"]+")
_DIGITS = re.compile(r"[0-9]+")


def normalize_phone(value: object, field: str = "to") -> str:
    """Return the number as the gateways want it: digits only, country code first.

    Spaces, brackets, dashes and a leading ``+`` go; an 11-digit number starting
    with 8 becomes 7…; a 10-digit number starting with 9 gets the 7 in front. What
    is left must be 10 to 15 digits, and: a number starting with 7 has exactly 11;
    a leading 0 or 00 (a trunk or an international prefix) is refused, as is any
    other 10-digit number (it lacks its country code: ``4951234567`` would go to +49).

    >>> normalize_phone("+7 (911) 222-33-33")
    '79112223333'
    >>> normalize_phone("8 911 222 33 33")
    '79112223333'
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if len(value) == 11 and value[0] == "7" and value.isascii() and value.isdigit():
        # Already in the gateways' form (the common case in bulk): nothing to change.
        return value
    return _with_country_code(_bare_digits(value, field), field)


def _bare_digits(value: str, field: str) -> str:
    """The number's digits without the noise people write around them."""
    digits = value.strip().translate(_PHONE_NOISE)
    if not value.strip():
        raise ValidationError(field, "must not be empty")
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits:
        raise ValidationError(field, "must have 10 to 15 digits with the country code")
    if not digits.isascii() or not digits.isdigit():
        raise ValidationError(
            field, "must hold only digits, spaces, brackets, dashes and a leading +"
        )
    if digits[0] == "0":
        raise ValidationError(
            field,
            "must be written in international form without a leading 0 or 00 "
            "(e.g. 79112223333 or +7 911 222-33-33)",
        )
    return digits


def _with_country_code(digits: str, field: str) -> str:
    """A Russian number written the domestic way, made international; then the length rules."""
    length = len(digits)
    if length == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    elif length == 10:
        if digits[0] != "9":
            raise ValidationError(
                field,
                "has 10 digits and no country code: add the country code in front "
                "(7 for Russia, e.g. 74951234567)",
            )
        digits = "7" + digits
    if not 10 <= len(digits) <= 15:
        raise ValidationError(field, "must have 10 to 15 digits with the country code")
    if digits[0] == "7" and len(digits) != 11:
        # 7 is Russia's and Kazakhstan's code: their numbers have 11 digits in all.
        raise ValidationError(field, "a number starting with 7 must have exactly 11 digits")
    return digits


# C0 controls other than tab, newline and carriage return, lone surrogates and the
# two non-characters: no SMS can carry them, and XML 1.0 cannot even encode them.
_UNSENDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_text(value: object) -> str:
    """The text must be a non-blank string of sendable characters."""
    if not isinstance(value, str):
        raise ValidationError("text", f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValidationError("text", "must not be empty")
    bad = _UNSENDABLE.search(value)
    if bad is not None:
        raise ValidationError(
            "text", f"must not contain control characters (U+{ord(bad.group()):04X})"
        )
    return value


def check_at(value: object) -> datetime | None:
    """A scheduled time is a ``datetime`` (naive means Moscow time) or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError("at", f"must be a datetime, not {type(value).__name__}")
    return value


def check_ttl(value: object) -> int | None:
    """TTL is a positive int passed to the gateway as is (no unit is documented)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("ttl", f"must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValidationError("ttl", "must be positive")
    # A plain int: a subclass's str() could be anything on the wire.
    return int(value)


def check_sender_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("sender", f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError("sender", "must not be empty")
    return value


def moscow_time(value: datetime) -> str:
    """Format a datetime for my-sms: Moscow time as ``dd.MM.yyyy HH:mm:ss``.

    An aware datetime is converted; a naive one is taken as Moscow time already.
    """
    if value.tzinfo is not None:
        value = value.astimezone(MOSCOW)
    return value.strftime("%d.%m.%Y %H:%M:%S")


@lru_cache(maxsize=256)
def check_mysms_sender(value: str) -> str:
    """my-sms: at most 11 Latin characters, or at most 15 digits."""
    if _DIGITS.fullmatch(value):
        if len(value) > 15:
            raise ValidationError("sender", "a numeric sender has at most 15 digits")
        return value
    if not value.isascii() or not _LATIN_SENDER.fullmatch(value):
        raise ValidationError("sender", "must be Latin letters (at most 11) or digits (at most 15)")
    if len(value) > 11:
        raise ValidationError("sender", "an alphanumeric sender has at most 11 characters")
    return value


@lru_cache(maxsize=256)
def check_thousandsms_sender(value: str) -> str:
    """1000sms: Latin only, 4 to 11 characters, at most 2 digits.

    The length ceiling of 11 is the usual alphanumeric sender limit: the gateway
    documents an error for a bad length (608) but not the number.
    """
    if not value.isascii() or not _LATIN_SENDER.fullmatch(value):
        raise ValidationError("sender", "must be in Latin characters")
    if len(value) < 4:
        raise ValidationError("sender", "must have at least 4 characters")
    if len(value) > 11:
        raise ValidationError("sender", "must have at most 11 characters")
    if sum(c.isdigit() for c in value) > 2:
        raise ValidationError("sender", "must have at most 2 digits")
    return value


# -- options ---------------------------------------------------------------------------
#
# One set of checks for every numeric option (clients, Batcher, retries, tracking):
# bool is refused although it is an int, and NaN and the infinities are refused
# because every comparison with NaN is false and would let it through a range check.


def _real(value: object, field: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(field, f"must be a number{unit}, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(field, f"must be a finite number{unit}, not {number!r}")
    return number


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise ValidationError(field, "must be an int, not bool")
    try:
        # operator.index takes int and int-like types (numpy's), never a float.
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(field, f"must be an int, not {type(value).__name__}") from None


def positive_int(value: object, field: str) -> int:
    """An int of at least 1 (a size, a count of workers)."""
    number = _integer(value, field)
    if number < 1:
        raise ValidationError(field, f"must be a positive int, not {number}")
    return number


def non_negative_int(value: object, field: str) -> int:
    """An int of at least 0 (a number of retries)."""
    number = _integer(value, field)
    if number < 0:
        raise ValidationError(field, f"must not be negative, not {number}")
    return number


def positive_number(value: object, field: str, unit: str = " of seconds") -> float:
    """A finite number above 0 (a timeout, an interval, a rate)."""
    number = _real(value, field, unit)
    if number <= 0:
        raise ValidationError(field, f"must be a positive number{unit}, not {number!r}")
    return number


def non_negative_number(value: object, field: str, unit: str = " of seconds") -> float:
    """A finite number of at least 0 (a delay that may be none)."""
    number = _real(value, field, unit)
    if number < 0:
        raise ValidationError(field, f"must not be negative, not {number!r}")
    return number


def fraction(value: object, field: str) -> float:
    """A finite number from 0 to 1."""
    number = _real(value, field, "")
    if not 0 <= number <= 1:
        raise ValidationError(field, f"must be from 0 to 1, not {number!r}")
    return number


def optional(check: Callable[[object, str], T], value: object, field: str) -> T | None:
    """``check`` the value unless it is None."""
    return None if value is None else check(value, field)


def non_negative_amount(value: object, field: str) -> Decimal:
    """A finite amount of money of at least 0, as a Decimal (a float goes through str)."""
    amount: Decimal | None = None
    if not isinstance(value, bool) and isinstance(value, (Decimal, int, float, str)):
        try:
            amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except ArithmeticError:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ValidationError(field, "must be a non-negative amount, e.g. Decimal('2.50')")
    return amount
