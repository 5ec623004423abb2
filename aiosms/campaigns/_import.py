"""Import: messages (and rows refused before import) into a campaign's journal, in chunks.

Each message becomes a ``NewRow`` keyed by ``Message.key`` (its position in the
input when None); rows go to ``Journal.import_rows`` a chunk at a time, which is
idempotent on the key. Nothing here sends or decides a row's fate beyond import.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from aiosms._errors import ValidationError
from aiosms._models import Message
from aiosms._validation import normalize_phone
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import ImportResult, NewRow
from aiosms.campaigns._rows import new_row

__all__ = ["import_messages"]

#: Rows per ``import_rows`` call: one transaction each.
_IMPORT_CHUNK = 5000


async def import_messages(
    journal: Journal,
    campaign_id: int,
    settings: Mapping[str, Any],
    messages: Iterable[Message] | AsyncIterable[Message],
    invalid: Iterable[tuple[Any, str, str]],
) -> ImportResult:
    """Import ``messages`` with the campaign's stored ``settings``, then ``invalid`` rows
    (``(key, phone as given, reason)``) as ``skipped``; the rows added and skipped."""
    chunks = _Chunks(journal, campaign_id, dedupe=bool(settings.get("dedupe", True)))
    sender = settings.get("sender")
    max_parts = settings.get("max_parts")

    def row(position: int, message: object) -> NewRow:
        if not isinstance(message, Message):
            raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
        key = str(position if message.key is None else message.key)
        return new_row(key, message, sender, max_parts)

    position = 0
    if isinstance(messages, AsyncIterable):
        async for message in messages:
            position += 1
            await chunks.put(row(position, message))
    else:
        for message in messages:
            position += 1
            await chunks.put(row(position, message))
    for key, phone, reason in invalid:
        await chunks.put(_invalid_row(key, phone, reason))
    await chunks.flush()
    return ImportResult(chunks.added, chunks.skipped)


def _invalid_row(key: Any, phone: str, reason: str) -> NewRow:
    """A row refused before import, recorded as ``skipped`` with its number as well as
    it can be read."""
    try:
        number = normalize_phone(phone)
    except ValidationError:
        number = str(phone)
    return NewRow(str(key), number, "", None, None, None, 0, "skipped", f"invalid: {reason}")


class _Chunks:
    """Rows gathered into chunks, each imported in one journal call, with the tally."""

    def __init__(self, journal: Journal, campaign_id: int, *, dedupe: bool) -> None:
        self._journal = journal
        self._campaign_id = campaign_id
        self._dedupe = dedupe
        self._rows: list[NewRow] = []
        self.added = 0
        self.skipped = 0

    async def put(self, row: NewRow) -> None:
        self._rows.append(row)
        if len(self._rows) >= _IMPORT_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self._rows:
            result = await self._journal.import_rows(
                self._campaign_id, self._rows, dedupe=self._dedupe
            )
            self.added += result.added
            self.skipped += result.skipped
            self._rows = []
