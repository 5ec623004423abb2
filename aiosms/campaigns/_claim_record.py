"""A claim's rows as the SQLite journal's claim record keeps them.

The ids the claim took and their parts are 8-byte integers in one blob (little-endian,
ids then parts); which of them a packet has taken is a bitmap beside it. A packet's rows
are found by bisection, so a claim of thousands of rows sent one row per packet (1000sms)
costs the same per packet as one sent in packets of a thousand.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Sequence

__all__ = ["ClaimRecord"]

_SWAP = sys.byteorder != "little"


class ClaimRecord:
    """The rows of one claim: ids (sorted), parts, and which were sent."""

    __slots__ = ("ids", "parts", "sent")

    def __init__(self, ids: array[int], parts: array[int], sent: bytearray) -> None:
        self.ids = ids
        self.parts = parts
        self.sent = sent

    @classmethod
    def new(cls, ids: list[int], parts: list[int]) -> ClaimRecord:
        """A fresh claim of ``ids`` (sorted) with their ``parts``; nothing sent."""
        return cls(array("q", ids), array("q", parts), bytearray((len(ids) + 7) // 8))

    @classmethod
    def read(cls, rows: bytes, sent: bytes) -> ClaimRecord:
        """The record as stored: ``rows`` (ids then parts) and the ``sent`` bitmap."""
        numbers = array("q")
        numbers.frombytes(rows)
        if _SWAP:
            numbers.byteswap()
        half = len(numbers) // 2
        return cls(numbers[:half], numbers[half:], bytearray(sent))

    def rows_blob(self) -> bytes:
        """Ids then parts, as stored."""
        numbers = array("q", self.ids)
        numbers.extend(self.parts)
        if _SWAP:
            numbers.byteswap()
        return numbers.tobytes()

    def sent_blob(self) -> bytes:
        """The bitmap of rows sent, as stored."""
        return bytes(self.sent)

    def _is_sent(self, position: int) -> bool:
        return bool(self.sent[position >> 3] & (1 << (position & 7)))

    def unsent(self) -> list[int]:
        """The ids no packet took, in order."""
        return [i for k, i in enumerate(self.ids) if not self._is_sent(k)]

    def take(self, ids: list[int]) -> tuple[list[int], int]:
        """Mark those of ``ids`` (sorted, distinct) that are this claim's and not sent yet
        as sent; returns them and their parts in all."""
        claimed = self.ids
        start = bisect.bisect_left(claimed, ids[0])
        positions: Sequence[int]
        if claimed[start : start + len(ids)].tolist() == ids:
            # The usual case: a packet is a run of its claim's rows.
            positions = range(start, start + len(ids))
        else:
            found = [(bisect.bisect_left(claimed, i), i) for i in ids]
            positions = [k for k, i in found if k < len(claimed) and claimed[k] == i]
        taken: list[int] = []
        parts = 0
        for k in positions:
            if not self._is_sent(k):
                self.sent[k >> 3] |= 1 << (k & 7)
                taken.append(claimed[k])
                parts += self.parts[k]
        return taken, parts
