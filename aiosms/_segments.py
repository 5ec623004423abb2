"""How many SMS parts a text takes, and in which encoding.

Pure functions over the GSM 03.38 alphabet: no I/O, no gateway rules. A text that
fits GSM-7 takes 160 septets in one SMS and 153 per part when split (extension
characters such as ``€`` or ``{`` take two septets and are never split across
parts); any other text goes as UCS-2, 70 UTF-16 units in one SMS and 67 per part
(a character outside the BMP takes two units and is never split either).
"""

# No ``from __future__ import annotations`` here: ``Segments`` is re-exported as
# ``aiosms.Segments``, so string annotations would be looked up in the wrong module by
# ``typing.get_type_hints`` and cattrs. Evaluated now, they hold the types themselves.
from typing import Literal

import attrs

__all__ = ["Segments", "segments"]

# GSM 03.38 default alphabet, without the escape character itself.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters reached through the escape: each costs two septets.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = _GSM7_BASIC | _GSM7_EXTENSION

Encoding = Literal["GSM-7", "UCS-2"]


@attrs.frozen(slots=True)
class Segments:
    """What a text costs in SMS parts.

    ``units`` is the length in septets (GSM-7) or UTF-16 code units (UCS-2);
    ``per_part`` the capacity of each part (160 or 70 for a single SMS, 153 or 67 when
    split); ``ucs2_chars`` the distinct characters, in order of appearance, that forced
    UCS-2 (empty for GSM-7).
    """

    encoding: Encoding
    parts: int
    units: int
    per_part: int
    ucs2_chars: tuple[str, ...] = ()


def segments(text: str) -> Segments:
    """Count the SMS parts ``text`` takes.

    >>> segments("Hello").parts
    1
    >>> s = segments("Привет, " * 20)
    >>> (s.encoding, s.parts, s.ucs2_chars[:2])
    ('UCS-2', 3, ('П', 'р'))
    """
    forcing = tuple(dict.fromkeys(c for c in text if c not in _GSM7))
    if not forcing:
        costs = [2 if c in _GSM7_EXTENSION else 1 for c in text]
        return _pack("GSM-7", costs, single=160, split=153, ucs2_chars=())
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return _pack("UCS-2", costs, single=70, split=67, ucs2_chars=forcing)


def count_parts(text: str) -> int:
    """How many parts ``text`` takes: ``segments(text).parts``, on the fast paths first.

    Called for every message sent, so the common cases cost a few C-level scans.
    """
    units = len(text)
    if units <= 35:
        # Even two UTF-16 units a character fit one UCS-2 SMS of 70.
        return 1
    if _GSM7.issuperset(text):
        extended = sum(text.count(c) for c in _GSM7_EXTENSION) if not text.isalnum() else 0
        if extended == 0:
            return 1 if units <= 160 else -(-units // 153)
    elif max(text) <= "\uffff":
        return 1 if units <= 70 else -(-units // 67)
    return segments(text).parts


def _pack(
    encoding: Encoding, costs: list[int], *, single: int, split: int, ucs2_chars: tuple[str, ...]
) -> Segments:
    units = sum(costs)
    if units <= single:
        return Segments(encoding, 1, units, single, ucs2_chars)
    # A character never straddles two parts, so a part may end a unit short.
    parts, room = 1, split
    for cost in costs:
        if cost > room:
            parts += 1
            room = split
        room -= cost
    return Segments(encoding, parts, units, split, ucs2_chars)
