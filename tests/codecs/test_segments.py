"""SMS part counting: GSM-7 at 160/153, UCS-2 at 70/67, per DESIGN.md "Segments".

The property test compares ``aiosms.segments`` with an encoder written here from the
GSM 03.38 table: it really encodes the text to septets or UTF-16 units, splits them
into parts without cutting a character in two, and checks the parts decode back.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import aiosms

EXTENSION = "€{}[]~|^\\"

# --- GSM-7 ----------------------------------------------------------------------


def test_160_gsm_characters_fit_one_sms() -> None:
    result = aiosms.segments("a" * 160)
    assert (result.encoding, result.parts, result.units, result.per_part) == ("GSM-7", 1, 160, 160)


def test_161_gsm_characters_take_two_parts_of_153() -> None:
    result = aiosms.segments("a" * 161)
    assert (result.encoding, result.parts, result.units, result.per_part) == ("GSM-7", 2, 161, 153)


def test_306_gsm_characters_still_take_two_parts() -> None:
    assert aiosms.segments("b" * 306).parts == 2


def test_307_gsm_characters_take_three_parts() -> None:
    assert aiosms.segments("c" * 307).parts == 3


def test_459_gsm_characters_take_three_parts_and_460_take_four() -> None:
    assert aiosms.segments("d" * 459).parts == 3
    assert aiosms.segments("d" * 460).parts == 4


def test_a_short_latin_text_is_one_gsm_part_with_no_forcing_characters() -> None:
    result = aiosms.segments("Hello, world! Code: 1234.")
    assert (result.encoding, result.parts, result.ucs2_chars) == ("GSM-7", 1, ())


def test_gsm_accented_and_greek_letters_stay_in_gsm_7() -> None:
    result = aiosms.segments(
        "Ça déjà Ñoño ÄÖÜ äöüà £¥§¿¡@$ \u0394\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e"
    )
    assert result.encoding == "GSM-7"
    assert result.ucs2_chars == ()


def test_each_extension_character_counts_two_septets() -> None:
    for char in EXTENSION:
        assert aiosms.segments(char).units == 2, char
        assert aiosms.segments(char * 80).parts == 1, char
        assert aiosms.segments(char * 80).units == 160, char
        assert aiosms.segments(char * 81).parts == 2, char
        assert aiosms.segments(char * 81).units == 162, char


def test_extension_characters_keep_the_text_in_gsm_7() -> None:
    result = aiosms.segments("Price: 5€ {a} [b] ~c| ^d\\")
    assert result.encoding == "GSM-7"
    assert result.ucs2_chars == ()


def test_158_characters_and_one_euro_fill_one_sms_exactly() -> None:
    assert aiosms.segments("a" * 158 + "€").parts == 1


def test_159_characters_and_one_euro_need_two_parts() -> None:
    result = aiosms.segments("a" * 159 + "€")
    assert (result.parts, result.units) == (2, 161)


def test_an_extension_character_never_straddles_two_parts() -> None:
    # 306 septets would fit two parts of 153 if the euro could be cut in half:
    # part 1 = 152 'a' (one septet left unused), part 2 = '€' + 151 'a', part 3 = 'a'.
    text = "a" * 152 + "€" + "a" * 152
    result = aiosms.segments(text)
    assert result.units == 306
    assert result.parts == 3


def test_an_extension_character_that_fits_exactly_at_a_part_end_is_not_moved() -> None:
    # part 1 = 151 'a' + '€' (153), part 2 = 153 'a'.
    assert aiosms.segments("a" * 151 + "€" + "a" * 153).parts == 2


# --- UCS-2 ------------------------------------------------------------------------


def test_70_cyrillic_characters_fit_one_sms() -> None:
    result = aiosms.segments("ж" * 70)
    assert (result.encoding, result.parts, result.units, result.per_part) == ("UCS-2", 1, 70, 70)


def test_71_cyrillic_characters_take_two_parts_of_67() -> None:
    result = aiosms.segments("ж" * 71)
    assert (result.encoding, result.parts, result.units, result.per_part) == ("UCS-2", 2, 71, 67)


def test_134_cyrillic_characters_still_take_two_parts() -> None:
    assert aiosms.segments("ы" * 134).parts == 2


def test_135_cyrillic_characters_take_three_parts() -> None:
    assert aiosms.segments("ы" * 135).parts == 3


def test_a_150_character_cyrillic_text_takes_three_parts() -> None:
    text = ("Ваш заказ готов. " * 9)[:150]
    assert len(text) == 150
    result = aiosms.segments(text)
    assert (result.encoding, result.parts) == ("UCS-2", 3)


def test_one_cyrillic_letter_turns_a_long_latin_text_into_ucs_2() -> None:
    # 100 Latin characters fit one GSM-7 SMS, but not one UCS-2 SMS.
    result = aiosms.segments("a" * 99 + "я")
    assert (result.encoding, result.parts, result.units) == ("UCS-2", 2, 100)


def test_extension_characters_count_one_unit_in_ucs_2() -> None:
    result = aiosms.segments("я" + "€" * 69)
    assert (result.encoding, result.parts, result.units) == ("UCS-2", 1, 70)


def test_ucs2_chars_lists_the_distinct_forcing_characters_in_order_of_appearance() -> None:
    result = aiosms.segments("Привет, мир! Hi")
    assert result.ucs2_chars == ("П", "р", "и", "в", "е", "т", "м")


def test_ucs2_chars_leaves_out_characters_that_gsm_7_can_carry() -> None:
    result = aiosms.segments("Hello мама €5 {ok}")
    assert result.ucs2_chars == ("м", "а")


def test_ucs2_chars_names_a_lone_non_gsm_symbol() -> None:
    result = aiosms.segments("Total: 5 ₽")
    assert (result.encoding, result.ucs2_chars) == ("UCS-2", ("₽",))


def test_an_emoji_counts_two_utf16_units() -> None:
    result = aiosms.segments("😀")
    assert (result.encoding, result.units, result.ucs2_chars) == ("UCS-2", 2, ("😀",))


def test_35_emoji_fit_one_sms_and_36_take_two_parts() -> None:
    assert aiosms.segments("😀" * 35).parts == 1
    result = aiosms.segments("😀" * 36)
    assert (result.parts, result.units) == (2, 72)


def test_an_emoji_never_straddles_two_parts() -> None:
    # 134 units would fit two parts of 67 if the surrogate pair could be cut:
    # part 1 = 66 'a', part 2 = emoji + 65 'a', part 3 = 'a'.
    result = aiosms.segments("a" * 66 + "😀" + "a" * 66)
    assert (result.units, result.parts) == (134, 3)


# --- property test against an independent encoder -----------------------------------

_ESC = "\x1b"
# GSM 03.38 default alphabet, code points 0x00-0x7F in order (0x1B is the escape).
_GSM_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e" + _ESC + "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_GSM_BASIC_TABLE) == 128
_GSM_BASIC = {char: code for code, char in enumerate(_GSM_BASIC_TABLE) if char != _ESC}
_GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM_DECODE_BASIC = {code: char for char, code in _GSM_BASIC.items()}
_GSM_DECODE_EXTENSION = {code: char for char, code in _GSM_EXTENSION.items()}


def _septets(char: str) -> list[int]:
    if char in _GSM_BASIC:
        return [_GSM_BASIC[char]]
    return [0x1B, _GSM_EXTENSION[char]]  # KeyError: not in GSM-7


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _split(chunks: list[list[int]], *, single: int, split: int) -> list[list[int]]:
    """Cut encoded characters into parts; a character's units stay in one part."""
    if sum(len(chunk) for chunk in chunks) <= single:
        return [[unit for chunk in chunks for unit in chunk]]
    parts: list[list[int]] = [[]]
    for chunk in chunks:
        if len(parts[-1]) + len(chunk) > split:
            parts.append([])
        parts[-1].extend(chunk)
    return parts


def _decode_gsm(part: list[int]) -> str:
    chars, escaped = [], False
    for septet in part:
        if escaped:
            chars.append(_GSM_DECODE_EXTENSION[septet])
            escaped = False
        elif septet == 0x1B:
            escaped = True
        else:
            chars.append(_GSM_DECODE_BASIC[septet])
    assert not escaped, "an escape was cut from its character"
    return "".join(chars)


def _decode_ucs2(part: list[int]) -> str:
    return b"".join(unit.to_bytes(2, "big") for unit in part).decode("utf-16-be")


def _encode(text: str) -> tuple[str, list[list[int]], int]:
    """Return (encoding, parts, capacity per part) for ``text``."""
    try:
        chunks = [_septets(char) for char in text]
    except KeyError:
        chunks = [_utf16_units(char) for char in text]
        parts = _split(chunks, single=70, split=67)
        assert "".join(_decode_ucs2(part) for part in parts) == text
        assert all(len(part) <= (70 if len(parts) == 1 else 67) for part in parts)
        return "UCS-2", parts, 70 if len(parts) == 1 else 67
    parts = _split(chunks, single=160, split=153)
    assert "".join(_decode_gsm(part) for part in parts) == text
    assert all(len(part) <= (160 if len(parts) == 1 else 153) for part in parts)
    return "GSM-7", parts, 160 if len(parts) == 1 else 153


_gsm_chars = st.sampled_from(sorted(_GSM_BASIC)) | st.sampled_from(sorted(_GSM_EXTENSION))
_ucs2_chars = st.one_of(
    st.sampled_from("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ₽№"),
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
    st.characters(codec="utf-8"),  # a lone surrogate cannot be sent at all
)
# A two-unit character placed around a part boundary, where cutting it would save a part.
_near_boundary = st.one_of(
    st.builds(
        lambda pre, char, post: "a" * pre + char + "a" * post,
        st.integers(150, 154),
        st.sampled_from(sorted(_GSM_EXTENSION)),
        st.integers(148, 156),
    ),
    st.builds(
        lambda pre, char, post: "a" * pre + char + "a" * post,
        st.integers(64, 68),
        st.sampled_from(["😀", "🚀", "\U00010348"]),
        st.integers(62, 70),
    ),
)
_texts = st.one_of(
    _near_boundary,
    st.text(alphabet=_gsm_chars, min_size=1, max_size=480),
    st.text(alphabet=st.sampled_from("a€{"), min_size=140, max_size=320),
    st.text(alphabet=_gsm_chars | _ucs2_chars, min_size=1, max_size=220),
    st.text(alphabet=st.sampled_from("жa😀"), min_size=55, max_size=150),
)


@given(_texts)
def test_segments_agrees_with_an_encoder_that_really_splits_the_text(text: str) -> None:
    encoding, parts, per_part = _encode(text)
    result = aiosms.segments(text)
    assert result.encoding == encoding
    assert result.parts == len(parts)
    assert result.units == sum(len(part) for part in parts)
    assert result.per_part == per_part


@given(_texts)
def test_ucs2_chars_are_exactly_the_characters_gsm_7_cannot_carry(text: str) -> None:
    forcing: list[str] = []
    for char in text:
        if char not in _GSM_BASIC and char not in _GSM_EXTENSION and char not in forcing:
            forcing.append(char)
    result = aiosms.segments(text)
    assert result.ucs2_chars == tuple(forcing)
    assert (result.encoding == "UCS-2") == bool(forcing)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.sampled_from("aZ09 €{[~ЖЯ😀\n") | st.characters(codec="utf-8"), max_size=400)
)
def test_the_fast_part_count_agrees_with_the_full_count(text: str) -> None:
    from aiosms._segments import count_parts

    assert count_parts(text) == aiosms.segments(text).parts
