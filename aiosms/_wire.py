"""The cattrs hooks that turn decoded reply dicts into typed records.

Gateways send numbers as strings or ints, empty XML elements as None, and money
with a decimal comma; these hooks absorb that once, so the codecs' record classes
can say plainly what they expect. Unknown keys are ignored. Each gateway codec
makes its own converter with ``make_converter()`` and registers its own hooks on
it; ``converter`` is one made here, which no codec touches.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import cattrs


def to_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError(f"not a number: {type(value).__name__}")


def to_str(value: Any, _: type) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("a boolean is not text")
    if isinstance(value, (str, int)):
        return str(value)
    raise ValueError(f"not text: {type(value).__name__}")


def _to_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite amount")
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError("not an amount") from None
        if not amount.is_finite():
            raise ValueError("not a finite amount")
        return amount
    raise ValueError(f"not an amount: {type(value).__name__}")


def _refuse_datetime(value: Any, _: type) -> datetime:
    raise TypeError("dates are parsed by the adapter that knows their format")


def make_converter() -> cattrs.Converter:
    """A new converter with the lenient hooks for numbers, text, amounts and dates."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(int, to_int)
    converter.register_structure_hook(str, to_str)
    converter.register_structure_hook(Decimal, _to_decimal)
    converter.register_structure_hook(datetime, _refuse_datetime)
    return converter


converter = make_converter()

# What structuring a malformed dict may raise; each means "the reply is not what
# the document says".
STRUCTURE_ERRORS = (
    cattrs.BaseValidationError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)
