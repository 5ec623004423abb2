"""Public models work with the tools users reach for: ``typing.get_type_hints`` and cattrs.

Every public model (an attrs class or a named tuple in the ``__all__`` of a public
package) is found by walking those lists, so a model added later is covered without
touching this file. A sample of each is built from its own type hints, then sent
through a bare ``cattrs.Converter`` and through cattrs' JSON converter and back.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import cattrs
import cattrs.preconf.json
import pytest

import aiosms
import aiosms.campaigns
import aiosms.sync
import aiosms.testing

_PACKAGES = (aiosms, aiosms.sync, aiosms.campaigns, aiosms.testing)

# Fields whose type alone does not make a valid value.
_VALID_VALUES: Mapping[tuple[str, str], object] = {("Message", "to"): "79112223333"}


def _is_named_tuple(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def _public_models() -> list[type[Any]]:
    found: dict[type[Any], None] = {}
    for package in _PACKAGES:
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, type) and (attrs.has(obj) or _is_named_tuple(obj)):
                found[obj] = None
    return list(found)


def _field_names(model: type[Any]) -> list[str]:
    if attrs.has(model):
        return [field.name for field in attrs.fields(model)]
    return list(model._fields)


def _sample_value(hint: Any) -> Any:
    """A value of type ``hint`` that is not a default (so the round trip proves something)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in args if arm is not type(None)]
        # An error is an exception, not data: a model holds None there on the round trip.
        if all(isinstance(arm, type) and issubclass(arm, BaseException) for arm in arms):
            return None
        return _sample_value(arms[0])
    if origin is typing.Literal:
        return args[-1]
    if origin is tuple:
        return (
            (_sample_value(args[0]),) if args[-1] is Ellipsis else tuple(map(_sample_value, args))
        )
    if origin is list:
        return [_sample_value(args[0])]
    if origin in (Mapping, dict):
        return {"rate": 50}
    if hint is Any:
        return "any-key"
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return list(hint)[-1]
        if attrs.has(hint) or _is_named_tuple(hint):
            return _sample(hint)
        scalars: dict[type[Any], object] = {
            bool: True,
            int: 7,
            float: 0.5,
            str: "sample",
            bytes: b"sample",
            Decimal: Decimal("1.25"),
            datetime: datetime(2026, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=3))),
        }
        if hint in scalars:
            return scalars[hint]
    raise AssertionError(f"no sample for {hint!r}: teach _sample_value this type")


def _sample(model: type[Any]) -> Any:
    hints = typing.get_type_hints(model)
    values = {
        name: _VALID_VALUES.get((model.__name__, name), _sample_value(hints[name]))
        for name in _field_names(model)
    }
    return model(**values)


def _with_scalar_hooks(converter: cattrs.Converter) -> cattrs.Converter:
    # cattrs leaves Decimal to the user (and datetime, outside its preconf converters).
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda value, _: Decimal(value))
    if not isinstance(converter, cattrs.preconf.json.JsonConverter):
        converter.register_structure_hook(datetime, lambda value, _: value)
    return converter


MODELS = _public_models()


def test_the_walk_finds_the_models_of_every_public_package() -> None:
    names = {model.__name__ for model in MODELS}
    assert {"Message", "Receipt", "StatusReport", "Balance", "Profile", "Segments"} <= names
    assert {"Summary", "Row", "Claim", "ClaimedRow", "CampaignInfo"} <= names
    assert {"Fault", "LedgerEntry", "CallRecord"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_get_type_hints_resolves_every_field_of_a_public_model(model: type[Any]) -> None:
    hints = typing.get_type_hints(model)
    assert set(_field_names(model)) <= set(hints)
    for name in _field_names(model):
        assert not isinstance(hints[name], (str, typing.ForwardRef)), name


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_a_bare_cattrs_converter_unstructures_a_public_model_to_its_fields(
    model: type[Any],
) -> None:
    sample = _sample(model)
    plain = cattrs.Converter().unstructure(sample)
    if attrs.has(model):
        assert set(plain) == set(_field_names(model))
    else:
        assert len(plain) == len(_field_names(model))


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_a_public_model_round_trips_through_cattrs(model: type[Any]) -> None:
    converter = _with_scalar_hooks(cattrs.Converter())
    sample = _sample(model)
    assert converter.structure(converter.unstructure(sample), model) == sample


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_a_public_model_round_trips_through_json_with_cattrs(model: type[Any]) -> None:
    converter = _with_scalar_hooks(cattrs.preconf.json.make_converter())
    sample = _sample(model)
    text = json.dumps(converter.unstructure(sample))
    assert converter.structure(json.loads(text), model) == sample


def test_a_receipt_with_its_message_unstructures_to_nested_plain_data() -> None:
    message = aiosms.Message(to="+7 911 222-33-33", text="Code 1234", key="order-1")
    receipt = aiosms.Receipt(message, "m-1", aiosms.DeliveryState.QUEUED, parts=1)
    plain = cattrs.Converter().unstructure(receipt)
    assert plain["message"]["to"] == "79112223333"
    assert plain["message"]["key"] == "order-1"
    assert plain["state"] == "queued"
    assert plain["error"] is None
