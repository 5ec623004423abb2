"""Input rules checked before the wire: phone numbers, text, dates, TTL, senders.

Expected values come from DESIGN.md ("Validation before the wire", "Odd wire facts")
or are worked out by hand; the property test checks phone normalisation against a
regex re-implementation of the same rules written here.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aiosms
from aiosms._validation import (
    check_mysms_sender,
    check_thousandsms_sender,
    moscow_time,
    normalize_phone,
)

# --- phone numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+7 (911) 222-33-33",
        "8 911 222 33 33",
        "79112223333",
        "+79112223333",
        "8(911)222-33-33",
        "9112223333",
        "(911) 222-33-33",
        "  +7 911 222 33 33  ",
    ],
)
def test_common_spellings_of_one_russian_number_normalise_alike(raw: str) -> None:
    assert normalize_phone(raw) == "79112223333"


def test_eleven_digits_starting_with_8_become_7() -> None:
    assert normalize_phone("89160000000") == "79160000000"


def test_a_leading_plus_is_stripped_before_the_8_rule() -> None:
    assert normalize_phone("+8 916 000 00 00") == "79160000000"


def test_ten_digits_starting_with_9_get_the_country_code_7() -> None:
    assert normalize_phone("9160000000") == "79160000000"


@pytest.mark.parametrize("raw", ["4951234567", "495 123-45-67", "+4951234567", "8123456789"])
def test_ten_digits_not_starting_with_9_are_refused_as_lacking_the_country_code(raw: str) -> None:
    # "4951234567" is a Moscow number without its 7: sent as it is it would go to +49.
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "country code" in caught.value.rule


def test_eight_as_first_of_twelve_digits_is_not_rewritten() -> None:
    assert normalize_phone("812345678901") == "812345678901"


def test_nine_as_first_of_eleven_digits_is_not_prefixed() -> None:
    assert normalize_phone("91234567890") == "91234567890"


def test_foreign_numbers_of_eleven_to_fifteen_digits_are_accepted() -> None:
    assert normalize_phone("+44 20 7946 0958") == "442079460958"
    assert normalize_phone("+1 212 555 0100") == "12125550100"
    assert normalize_phone("123456789012345") == "123456789012345"


@pytest.mark.parametrize(
    "raw",
    ["791122233334", "+7 (495) 123-45-67-8", "7 911 222 33 33 44", "+79112223333444"],
)
def test_a_number_starting_with_7_must_have_exactly_11_digits(raw: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "7" in caught.value.rule
    assert "11" in caught.value.rule


@pytest.mark.parametrize(
    "raw",
    ["0079112223333", "00 7 911 222-33-33", "+0079112223333", "0 911 222 33 33", "04951234567"],
)
def test_a_leading_0_or_00_is_refused_with_a_hint_to_write_the_international_form(
    raw: str,
) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "international form" in caught.value.rule
    assert "00" in caught.value.rule


@pytest.mark.parametrize("raw", ["", " ", "\t \n"])
def test_an_empty_number_is_refused_as_empty(raw: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert caught.value.rule == "must not be empty"


@pytest.mark.parametrize("raw", ["12", "+", "123456789", "+7 911 222-33", "(---)"])
def test_too_few_digits_is_a_validation_error_on_to(raw: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "digit" in caught.value.rule


@pytest.mark.parametrize("raw", ["1234567890123456", "+7 911 222 33 33 44 55 6"])
def test_more_than_fifteen_digits_is_a_validation_error_on_to(raw: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "15" in caught.value.rule


@pytest.mark.parametrize(
    "raw",
    [
        "+7 911 CALL-NOW",
        "7911222333a",
        "seven nine one one",
        "7911+2223333",
        "++79112223333",
        "79112223333+",
        "７９１１２２２３３３３",  # fullwidth digits: not what a gateway takes
        "٧٩١١٢٢٢٣٣٣٣",  # Arabic-Indic digits
    ],
)
def test_anything_but_digits_and_separators_is_a_validation_error_on_to(raw: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert caught.value.rule


@pytest.mark.parametrize("raw", [79112223333, None, b"79112223333", 7.9, ["79112223333"]])
def test_a_number_that_is_not_a_string_is_a_validation_error_on_to(raw: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        normalize_phone(raw)
    assert caught.value.field == "to"
    assert "string" in caught.value.rule


def test_the_phone_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="to"):
        normalize_phone("not a phone")


# An independent oracle: the rules of DESIGN.md and of the phone checks, spelt as
# regular expressions. It returns the number, or a word the refusal's rule must hold.
_SHAPE = re.compile(r"\s*\+?[0-9 ()\-]*\s*")


def _expected_number(raw: str) -> tuple[str | None, str | None]:
    """(number, None) where DESIGN.md accepts it, (None, word in the rule) where not."""
    if not raw.strip():
        return None, "empty"
    if not _SHAPE.fullmatch(raw):
        return None, "digit"
    digits = re.sub(r"[^0-9]", "", raw)
    if re.match(r"0", digits):
        return None, "00"
    if re.fullmatch(r"8[0-9]{10}", digits):
        digits = "7" + digits[1:]
    elif re.fullmatch(r"9[0-9]{9}", digits):
        digits = "7" + digits
    elif re.fullmatch(r"[0-9]{10}", digits):
        return None, "country code"
    if not re.fullmatch(r"[0-9]{10,15}", digits):
        return None, "digit"
    if re.match(r"7", digits) and not re.fullmatch(r"7[0-9]{10}", digits):
        return None, "11"
    return digits, None


_separators = st.sampled_from(["", "", "", " ", "-", "(", ")", " (", ") ", " - "])
_free_form = st.text(alphabet="0123456789 ()-", max_size=30)
_digit_runs = st.lists(
    st.tuples(_separators, st.sampled_from("0123456789")), min_size=8, max_size=17
).map(lambda pairs: "".join(sep + digit for sep, digit in pairs))
_russian_shaped = st.builds(
    lambda head, rest: head + rest,
    st.sampled_from(["8", "9", "7", "0", "00", "4", "+7", "+00"]),
    st.lists(st.tuples(_separators, st.sampled_from("0123456789")), min_size=8, max_size=11).map(
        lambda pairs: "".join(sep + digit for sep, digit in pairs)
    ),
)
_phone_like = st.builds(
    lambda plus, body: ("+" if plus else "") + body,
    st.booleans(),
    st.one_of(_free_form, _digit_runs, _russian_shaped),
)


@given(_phone_like)
def test_phone_normalisation_agrees_with_the_design_rules(raw: str) -> None:
    expected, reason = _expected_number(raw)
    if expected is None:
        with pytest.raises(aiosms.ValidationError) as caught:
            normalize_phone(raw)
        assert caught.value.field == "to"
        assert reason is not None
        assert reason in caught.value.rule
    else:
        assert normalize_phone(raw) == expected


@given(_phone_like)
def test_a_normalised_number_normalises_to_itself(raw: str) -> None:
    expected, _ = _expected_number(raw)
    if expected is None:
        with pytest.raises(aiosms.ValidationError):
            normalize_phone(raw)
    else:
        assert normalize_phone(normalize_phone(raw)) == expected


# --- Message construction -------------------------------------------------------


def test_a_message_normalises_its_number_at_once() -> None:
    message = aiosms.Message(to="+7 (911) 222-33-33", text="Привет")
    assert message.to == "79112223333"


def test_a_message_keeps_its_text_sender_schedule_and_ttl() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5)
    message = aiosms.Message(to="79160000000", text=" Hi ", sender="MyShop", at=at, ttl=60)
    assert (message.text, message.sender, message.at, message.ttl) == (" Hi ", "MyShop", at, 60)


def test_a_message_has_no_sender_schedule_ttl_or_key_by_default() -> None:
    message = aiosms.Message(to="79160000000", text="Hi")
    assert (message.sender, message.at, message.ttl, message.key) == (None, None, None, None)


def test_a_message_to_a_bad_number_fails_on_to() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="12", text="hi")
    assert caught.value.field == "to"


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_empty_or_blank_text_fails_on_text(text: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text=text)
    assert caught.value.field == "text"
    assert caught.value.rule


@pytest.mark.parametrize("text", [None, 42, b"hello"])
def test_text_that_is_not_a_string_fails_on_text(text: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text=cast(Any, text))
    assert caught.value.field == "text"


@pytest.mark.parametrize(
    "at", ["2025-01-02 03:04:05", "02.01.2025 03:04:05", 1735776245, date(2025, 1, 2)]
)
def test_a_schedule_that_is_not_a_datetime_fails_on_at(at: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text="hi", at=cast(Any, at))
    assert caught.value.field == "at"
    assert "datetime" in caught.value.rule


def test_naive_and_aware_datetimes_are_both_accepted_as_a_schedule() -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5)
    aware = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert aiosms.Message(to="79160000000", text="hi", at=naive).at == naive
    assert aiosms.Message(to="79160000000", text="hi", at=aware).at == aware


@pytest.mark.parametrize("ttl", [1, 60, 86_400])
def test_a_positive_int_ttl_is_kept_as_it_is(ttl: int) -> None:
    assert aiosms.Message(to="79160000000", text="hi", ttl=ttl).ttl == ttl


@pytest.mark.parametrize("ttl", [0, -1, -3600])
def test_a_ttl_that_is_not_positive_fails_on_ttl(ttl: int) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text="hi", ttl=ttl)
    assert caught.value.field == "ttl"
    assert "positive" in caught.value.rule


@pytest.mark.parametrize("ttl", [True, False, 1.5, 60.0, "60"])
def test_a_ttl_that_is_not_an_int_fails_on_ttl_and_bool_is_not_an_int(ttl: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text="hi", ttl=cast(Any, ttl))
    assert caught.value.field == "ttl"


@pytest.mark.parametrize("sender", [42, b"MyShop", ["MyShop"]])
def test_a_sender_that_is_not_a_string_fails_on_sender(sender: object) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        aiosms.Message(to="79160000000", text="hi", sender=cast(Any, sender))
    assert caught.value.field == "sender"


def test_a_message_does_not_apply_gateway_sender_rules_at_construction() -> None:
    # Gateway rules are checked when the message is sent, not when it is built.
    message = aiosms.Message(to="79160000000", text="hi", sender="Магазин-с-очень-длинным-именем")
    assert message.sender == "Магазин-с-очень-длинным-именем"


# --- Moscow time ------------------------------------------------------------------

_MSK = timezone(timedelta(hours=3))


def test_moscow_time_formats_day_month_year_hours_minutes_seconds_zero_padded() -> None:
    assert moscow_time(datetime(2024, 1, 2, 3, 4, 5)) == "02.01.2024 03:04:05"


def test_moscow_time_takes_a_naive_datetime_as_moscow_time_already() -> None:
    assert moscow_time(datetime(2024, 12, 31, 23, 59, 59)) == "31.12.2024 23:59:59"


def test_moscow_time_converts_utc_to_utc_plus_3() -> None:
    utc = datetime(2024, 12, 31, 22, 30, 0, tzinfo=timezone.utc)
    assert moscow_time(utc) == "01.01.2025 01:30:00"


def test_moscow_time_converts_any_other_offset_to_utc_plus_3() -> None:
    yekaterinburg = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=5)))
    assert moscow_time(yekaterinburg) == "01.06.2024 10:00:00"
    new_york = datetime(2024, 6, 1, 20, 15, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert moscow_time(new_york) == "02.06.2024 03:15:00"


def test_moscow_time_keeps_an_aware_moscow_datetime_as_it_is() -> None:
    assert moscow_time(datetime(2024, 3, 8, 9, 0, 0, tzinfo=_MSK)) == "08.03.2024 09:00:00"


def test_moscow_time_has_no_daylight_saving_shift() -> None:
    winter = datetime(2024, 1, 15, 9, 0, 0, tzinfo=timezone.utc)
    summer = datetime(2024, 7, 15, 9, 0, 0, tzinfo=timezone.utc)
    assert moscow_time(winter) == "15.01.2024 12:00:00"
    assert moscow_time(summer) == "15.07.2024 12:00:00"


def test_moscow_time_drops_microseconds() -> None:
    assert moscow_time(datetime(2024, 5, 6, 7, 8, 9, 999_999)) == "06.05.2024 07:08:09"


# --- my-sms sender rules ---------------------------------------------------------


@pytest.mark.parametrize(
    "sender", ["MyShop", "A", "ABCDEFGHIJK", "Shop24", "1", "79112223333", "123456789012345"]
)
def test_mysms_accepts_up_to_11_latin_characters_or_up_to_15_digits(sender: str) -> None:
    assert check_mysms_sender(sender) == sender


@pytest.mark.parametrize("sender", ["ABCDEFGHIJKL", "MyShopOnline", "Shop12345678"])
def test_mysms_refuses_a_latin_sender_longer_than_11(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_mysms_sender(sender)
    assert caught.value.field == "sender"


def test_mysms_refuses_a_numeric_sender_longer_than_15_digits() -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_mysms_sender("1234567890123456")
    assert caught.value.field == "sender"
    assert "15" in caught.value.rule


@pytest.mark.parametrize("sender", ["Магазин", "Shop№1", "Тест", "Shopé"])
def test_mysms_refuses_cyrillic_and_other_non_latin_senders(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_mysms_sender(sender)
    assert caught.value.field == "sender"
    assert "Latin" in caught.value.rule


# --- 1000sms sender rules ----------------------------------------------------------


@pytest.mark.parametrize("sender", ["sms-tester", "Shop", "ABCDEFGHIJK", "Shop24", "a1b2"])
def test_thousandsms_accepts_4_to_11_latin_characters_with_at_most_2_digits(sender: str) -> None:
    assert check_thousandsms_sender(sender) == sender


@pytest.mark.parametrize("sender", ["abc", "A", "ab1"])
def test_thousandsms_refuses_fewer_than_4_characters(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_thousandsms_sender(sender)
    assert caught.value.field == "sender"
    assert "4" in caught.value.rule


@pytest.mark.parametrize("sender", ["ABCDEFGHIJKL", "sms-tester-1"])
def test_thousandsms_refuses_more_than_11_characters(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_thousandsms_sender(sender)
    assert caught.value.field == "sender"
    assert "11" in caught.value.rule


@pytest.mark.parametrize("sender", ["Shop123", "1234", "a1b2c3", "79112223333"])
def test_thousandsms_refuses_more_than_2_digits(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_thousandsms_sender(sender)
    assert caught.value.field == "sender"
    assert "2" in caught.value.rule


@pytest.mark.parametrize("sender", ["Магазин", "ТестShop", "Shopé"])
def test_thousandsms_refuses_non_latin_senders(sender: str) -> None:
    with pytest.raises(aiosms.ValidationError) as caught:
        check_thousandsms_sender(sender)
    assert caught.value.field == "sender"
    assert "Latin" in caught.value.rule
