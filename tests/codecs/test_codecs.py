"""Wire codecs (JSON and XML to dicts) and the cattrs converter for reply records.

Per DESIGN.md "Odd wire facts": any XML root, numbers as strings or ints, a decimal
comma in my-sms balances; a body that is not one JSON object or one XML document is
a ``WireFormatError``, never some other exception.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosms._codecs import WireFormatError, dumps_json, dumps_xml, loads_json, loads_xml
from aiosms._wire import STRUCTURE_ERRORS, converter

# --- JSON -------------------------------------------------------------------------


def test_a_json_object_round_trips_through_dumps_and_loads() -> None:
    payload: dict[str, Any] = {
        "login": "u",
        "messages": [{"phone": "79112223333", "text": "Привет, мир €"}],
        "count": 2,
        "flag": None,
    }
    assert loads_json(dumps_json(payload)) == payload


def test_dumps_json_gives_utf8_bytes() -> None:
    body = dumps_json({"text": "Привет"})
    assert isinstance(body, bytes)
    assert "Привет" in body.decode("utf-8")


def test_loads_json_reads_a_gateway_reply() -> None:
    body = b'{"request": {"state": 0}, "messages": [{"id": "e061d23c", "state": 2}]}'
    assert loads_json(body) == {
        "request": {"state": 0},
        "messages": [{"id": "e061d23c", "state": 2}],
    }


@pytest.mark.parametrize("body", [b"[1, 2]", b'"ok"', b"42", b"null", b"true", b"[]"])
def test_json_that_is_not_an_object_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        loads_json(body)


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"text": "\xd0"}', b"\x80"])
def test_json_that_is_not_utf8_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        loads_json(body)


@pytest.mark.parametrize("body", [b"", b"   ", b"\n"])
def test_an_empty_json_body_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        loads_json(body)


def test_an_html_error_page_instead_of_json_is_a_wire_format_error() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    with pytest.raises(WireFormatError):
        loads_json(page)


@pytest.mark.parametrize("body", [b'{"state": 0', b'{"state": 0}}', b"{'state': 0}", b"{"])
def test_truncated_or_malformed_json_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        loads_json(body)


def test_deeply_nested_json_is_a_wire_format_error_not_a_recursion_error() -> None:
    with pytest.raises(WireFormatError):
        loads_json(b'{"a": ' + b"[" * 100_000)


# --- XML --------------------------------------------------------------------------


def test_xml_returns_what_is_under_the_root() -> None:
    body = b'<?xml version="1.0" encoding="utf-8"?><response><state>0</state><id>7</id></response>'
    assert loads_xml(body) == {"state": "0", "id": "7"}


@pytest.mark.parametrize("root", ["response", "sendSMS", "statusSMS", "r", "Answer"])
def test_xml_with_any_root_name_returns_the_roots_children(root: str) -> None:
    body = f"<{root}><request><state>0</state></request></{root}>".encode()
    assert loads_xml(body) == {"request": {"state": "0"}}


def test_an_empty_xml_root_gives_an_empty_dict() -> None:
    assert loads_xml(b"<response/>") == {}
    assert loads_xml(b"<response></response>") == {}


def test_an_xml_root_holding_only_text_is_a_wire_format_error() -> None:
    with pytest.raises(WireFormatError):
        loads_xml(b"<response>Internal error</response>")


def test_force_list_makes_one_message_parse_like_many() -> None:
    one = b"<r><messages><message><id>a</id></message></messages></r>"
    many = b"<r><messages><message><id>a</id></message><message><id>b</id></message></messages></r>"
    assert loads_xml(one, lists=["message"]) == {"messages": {"message": [{"id": "a"}]}}
    assert loads_xml(many, lists=["message"]) == {
        "messages": {"message": [{"id": "a"}, {"id": "b"}]}
    }


def test_without_force_list_one_element_is_not_wrapped_in_a_list() -> None:
    one = b"<r><messages><message><id>a</id></message></messages></r>"
    assert loads_xml(one) == {"messages": {"message": {"id": "a"}}}


def test_force_list_accepts_any_iterable_of_names() -> None:
    body = b"<r><msg><id>1</id></msg><item>x</item></r>"
    assert loads_xml(body, lists=("msg", "item")) == {"msg": [{"id": "1"}], "item": ["x"]}


def test_xml_attributes_such_as_xmlns_i_are_dropped() -> None:
    body = (
        b'<ArrayOfResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance" version="2">'
        b'<state i:type="int">2</state><id i:nil="true"/></ArrayOfResult>'
    )
    assert loads_xml(body) == {"state": "2", "id": None}


def test_xml_keeps_cyrillic_text() -> None:
    body = "<r><text>Нет денег</text></r>".encode()
    assert loads_xml(body) == {"text": "Нет денег"}


def test_xml_in_windows_1251_is_decoded_by_its_declaration() -> None:
    body = '<?xml version="1.0" encoding="windows-1251"?><r><text>Привет</text></r>'.encode(
        "cp1251"
    )
    assert loads_xml(body) == {"text": "Привет"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<r><state>0</state>",
        b"<r><state>0</sta",
        b"<r><state>0</status></r>",
        b"<r/><r/>",
        b"state=0",
        b'{"state": 0}',
        b"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>502</body></html>",
        b"<r>\xff</r>",
    ],
)
def test_malformed_or_truncated_xml_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        loads_xml(body)


def test_xml_declaring_an_unknown_encoding_is_a_wire_format_error() -> None:
    with pytest.raises(WireFormatError):
        loads_xml(b'<?xml version="1.0" encoding="no-such-charset"?><r><a>1</a></r>')


def test_dumps_xml_wraps_the_payload_in_the_named_root_and_loads_xml_reads_it_back() -> None:
    payload = {"login": "u", "message": {"phone": "79112223333", "text": "Привет & <b>"}}
    body = dumps_xml("request", payload)
    assert isinstance(body, bytes)
    assert b"<request>" in body
    assert loads_xml(body) == payload


# --- the property: bytes in, dict or WireFormatError out ---------------------------

_xmlish = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "</",
            "/>",
            "r",
            "a",
            "state",
            "=",
            '"',
            "'",
            " ",
            "0",
            "Привет",
            "&amp;",
            "&",
            ";",
            "<?xml",
            "?>",
            'encoding="',
            "utf-16",
            "<!DOCTYPE",
            "<![CDATA[",
            "]]>",
            "<!--",
            "-->",
            "xmlns:i",
            "i:nil",
        ]
    ),
    max_size=40,
).map(lambda tokens: "".join(tokens).encode())
_jsonish = st.lists(
    st.sampled_from(
        ["{", "}", "[", "]", ":", ",", '"', "a", "0", "-", "1e999", "NaN", "null", "true", " "]
    ),
    max_size=40,
).map(lambda tokens: "".join(tokens).encode())
_bodies = st.one_of(st.binary(max_size=200), _xmlish, _jsonish)


@settings(deadline=None)
@given(_bodies)
def test_loads_json_returns_a_dict_or_raises_wire_format_error_for_any_bytes(body: bytes) -> None:
    try:
        result = loads_json(body)
    except WireFormatError:
        return
    assert isinstance(result, dict)


@settings(deadline=None)
@given(_bodies)
def test_loads_xml_returns_a_dict_or_raises_wire_format_error_for_any_bytes(body: bytes) -> None:
    try:
        result = loads_xml(body, lists=["message"])
    except WireFormatError:
        return
    assert isinstance(result, dict)


# --- the cattrs converter -----------------------------------------------------------


@attrs.frozen
class _Reply:
    state: int
    id: str
    amount: Decimal


def test_the_converter_takes_numbers_as_strings() -> None:
    reply = converter.structure({"state": "2", "id": "17", "amount": "10.50"}, _Reply)
    assert reply == _Reply(state=2, id="17", amount=Decimal("10.50"))


def test_the_converter_takes_numbers_as_ints() -> None:
    reply = converter.structure({"state": 2, "id": 17, "amount": 10}, _Reply)
    assert reply == _Reply(state=2, id="17", amount=Decimal("10"))


def test_the_converter_takes_negative_codes_as_strings_with_surrounding_space() -> None:
    assert converter.structure(" -13 ", int) == -13


def test_the_converter_turns_none_into_an_empty_string_for_text_fields() -> None:
    reply = converter.structure({"state": "0", "id": None, "amount": "0"}, _Reply)
    assert reply.id == ""


def test_the_converter_reads_a_decimal_comma_as_a_decimal_point() -> None:
    assert converter.structure("77212,0000", Decimal) == Decimal("77212.0000")
    reply = converter.structure({"state": 0, "id": "", "amount": "77212,0000"}, _Reply)
    assert reply.amount == Decimal("77212.0000")


def test_the_converter_keeps_the_exact_decimal_value_of_an_amount() -> None:
    assert str(converter.structure("0,10", Decimal)) == "0.10"


def test_the_converter_ignores_unknown_keys() -> None:
    reply = converter.structure({"state": 1, "id": "x", "amount": "1", "extra": "?"}, _Reply)
    assert reply == _Reply(state=1, id="x", amount=Decimal("1"))


@pytest.mark.parametrize("target", [int, str, Decimal])
@pytest.mark.parametrize("value", [True, False])
def test_the_converter_refuses_booleans_for_numbers_text_and_amounts(
    target: type, value: bool
) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, target)


def test_a_boolean_state_in_a_reply_record_is_refused() -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure({"state": True, "id": "1", "amount": "1"}, _Reply)


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN"])
def test_the_converter_refuses_non_finite_amounts_given_as_text(value: str) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, Decimal)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_the_converter_refuses_non_finite_amounts_given_as_floats(value: float) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, Decimal)


def test_a_json_amount_that_overflows_to_infinity_is_refused() -> None:
    # Python's JSON decoder turns 1e999 into float('inf').
    decoded = loads_json(b'{"state": 0, "id": "x", "amount": 1e999}')
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(decoded, _Reply)


@pytest.mark.parametrize("value", ["", "12 rub", "1,000,000", "abc"])
def test_the_converter_refuses_text_that_is_not_an_amount(value: str) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, Decimal)


@pytest.mark.parametrize("value", ["", "two", "1.5", None, [1]])
def test_the_converter_refuses_values_that_are_not_whole_numbers(value: object) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, int)


@pytest.mark.parametrize("value", [["a"], {"a": "b"}, 1.5])
def test_the_converter_refuses_nested_values_for_text(value: object) -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure(value, str)


def test_the_converter_leaves_dates_to_the_adapters() -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure("02.01.2025 03:04:05", datetime)


def test_a_missing_field_is_a_structure_error() -> None:
    with pytest.raises(STRUCTURE_ERRORS):
        converter.structure({"state": 0, "id": "x"}, _Reply)
