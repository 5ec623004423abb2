"""Opening the journal named by ``--journal``, and reading the CSV files campaigns start from.

Only SQLite files are journals here; a ``postgresql://`` address is refused with a usage
error until a PostgreSQL backend ships. CSV rows become messages through a template whose
fields are plain column names, checked before any row is read: no attribute or index
access, no conversions or format specs, nothing that runs code.
"""

from __future__ import annotations

import csv
import string
from collections.abc import Iterator
from pathlib import Path

import attrs
import click

from aiosms._errors import ValidationError
from aiosms._models import Message
from aiosms.campaigns import SqliteJournal
from aiosms.cli._settings import Settings

__all__ = ["CsvRows", "open_journal", "read_csv", "template_fields"]


def open_journal(settings: Settings) -> SqliteJournal:
    """The journal of ``--journal`` (its directory is created, private, if missing)."""
    target = settings.journal
    if target.startswith(("postgresql://", "postgres://")):
        raise click.UsageError(
            "PostgreSQL journals are not supported by this version of the command yet: "
            "give --journal a SQLite file path"
        )
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SqliteJournal(path)


def template_fields(template: str, header: list[str]) -> list[str]:
    """The column names ``template`` uses; a usage error for anything but a plain name."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise click.UsageError(f"--template is not a valid template: {error}") from None
    fields = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise click.UsageError(
                f"--template field {{{field}}} is not a column name: only plain names such "
                "as {name} are allowed (no positions, attributes or indexes)"
            )
        if spec or conversion:
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise click.UsageError(
                f"--template field {{{shown}}} has a conversion or format spec: "
                "only plain names such as {name} are allowed"
            )
        if field not in header:
            raise click.UsageError(
                f"--template field {{{field}}} is not a column of the CSV "
                f"(columns: {', '.join(header)})"
            )
        fields.append(field)
    return fields


@attrs.define
class CsvRows:
    """A CSV file read as messages, one row at a time (a file of millions fits in memory).

    Built by :func:`read_csv`, which checks the header and the template first.
    ``messages()`` reads the file; as it goes, rows that cannot become a message land in
    ``invalid`` as ``(key, phone as given, reason)`` and ``total`` counts every row.
    """

    path: Path
    phone_column: str
    key_column: str | None
    text: str | None
    template: str | None
    invalid: list[tuple[str, str, str]] = attrs.Factory(list)
    total: int = 0

    def messages(self) -> Iterator[Message]:
        """The file's valid rows as messages keyed by key column or line number."""
        key_column, phone_column, template = self.key_column, self.phone_column, self.template
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            for line, row in _numbered(reader):
                self.total += 1
                values = {k: v or "" for k, v in row.items() if isinstance(k, str)}
                key = values.get(key_column, "").strip() if key_column else str(line)
                phone = values.get(phone_column, "")
                if not key:
                    self.invalid.append((f"line {line}", phone, f"line {line}: empty key"))
                    continue
                body = template.format_map(values) if template is not None else self.text
                try:
                    yield Message(to=phone, text=body or "", key=key)
                except ValidationError as error:
                    reason = f"line {line}: {error.field}: {error.rule}"
                    self.invalid.append((key, phone, reason))


def read_csv(
    path: Path,
    *,
    phone_column: str,
    key_column: str | None,
    text: str | None,
    template: str | None,
) -> CsvRows:
    """``path``'s rows, once its header has the columns and the template's fields."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    for column, option in ((phone_column, "--phone-column"), (key_column, "--key-column")):
        if column is not None and column not in header:
            raise click.UsageError(
                f"{option} {column!r} is not a column of the CSV "
                f"(columns: {', '.join(header) or 'none'})"
            )
    if template is not None:
        template_fields(template, header)
    return CsvRows(path, phone_column, key_column, text, template)


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str | None, str]]]:
    for row in reader:
        # line_num is the physical line the row ended on (a quoted field may span lines).
        yield reader.line_num, row
