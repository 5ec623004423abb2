"""Opening the journal named by ``--journal``, and reading the CSV files campaigns start from.

``--journal`` is a SQLite file path, or a PostgreSQL connection string as libpq takes
it: a ``postgresql://`` (or ``postgres://``) URI, or ``key=value`` pairs such as
``service=sms`` or ``host=/run/postgresql dbname=shop``. A password written into it
works, is warned about on stderr, and is never shown: every message names the
journal by :func:`journal_label`, with ``password=***``. CSV rows become messages
through a template whose fields are plain column names, checked before any row is
read: no attribute or index access, no conversions or format specs, nothing that
runs code.
"""

from __future__ import annotations

import csv
import re
import string
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import click

from aiosms._errors import ValidationError
from aiosms._models import Message
from aiosms.campaigns import Journal, SqliteJournal
from aiosms.cli._exit import ExitCode
from aiosms.cli._settings import Settings

__all__ = [
    "CsvRows",
    "is_postgres",
    "journal_label",
    "open_journal",
    "read_csv",
    "redact",
    "template_fields",
]

# libpq's key=value form starts with a keyword and "=" (a file path rarely does; write
# ./a=b.db for a SQLite file whose name starts like that).
_CONNINFO = re.compile(r"^\s*[A-Za-z_]+\s*=")
#: Journals already warned about in this process (by their masked form).
_warned: set[str] = set()


def is_postgres(target: str) -> bool:
    """Whether ``--journal`` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(("postgresql://", "postgres://")) or bool(_CONNINFO.match(target))


def journal_label(settings: Settings) -> str:
    """``--journal`` as messages may show it: a PostgreSQL password replaced by ``***``."""
    target = settings.journal
    if not is_postgres(target):
        return target
    try:
        from aiosms.campaigns._postgres import masked_conninfo
    except ImportError:
        return "a PostgreSQL database"
    try:
        return masked_conninfo(target)
    except ValidationError:
        return "a PostgreSQL database (malformed connection string)"


def redact(text: str, settings: Settings) -> str:
    """``text`` with the password of a PostgreSQL ``--journal``, if any, replaced by ``***``."""
    if not is_postgres(settings.journal):
        return text
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return text
    try:
        password = conninfo_to_dict(settings.journal).get("password")
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


def open_journal(settings: Settings) -> Journal:
    """The journal of ``--journal``: a SQLite file (its directory is created, private, if
    missing) or a PostgreSQL database (nothing connects before the first call)."""
    target = settings.journal
    if is_postgres(target):
        return _open_postgres(settings)
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SqliteJournal(path)


def _open_postgres(settings: Settings) -> Journal:
    try:
        from aiosms.campaigns._postgres import PostgresJournal
    except ImportError:
        click.echo(
            "aiosms: a PostgreSQL journal needs psycopg: pip install 'aiosms[postgres]'", err=True
        )
        raise SystemExit(int(ExitCode.NOTHING_SENT)) from None
    label = journal_label(settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            journal = PostgresJournal(settings.journal)
        except ValidationError:
            raise click.UsageError(
                "--journal is neither a SQLite file path nor a valid PostgreSQL connection "
                "string (postgresql://…, or libpq key=value pairs)"
            ) from None
    if any("password" in str(w.message) for w in caught) and label not in _warned:
        _warned.add(label)
        click.echo(
            "aiosms: warning: --journal holds a password: it ends up in shell histories and "
            "process lists; prefer ~/.pgpass (PGPASSFILE), a service file (service=NAME) "
            "or PGPASSWORD",
            err=True,
        )
    return journal


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
