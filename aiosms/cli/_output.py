"""Data on stdout as a table, JSON, JSON lines or CSV; everything else goes to stderr.

Commands turn results into rows (flat dicts of plain values) and call :func:`emit`;
phone numbers are masked here unless ``--show-numbers`` was given. rich honours
``NO_COLOR`` and draws no colour when stdout is not a terminal.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aiosms._models import mask_phone
from aiosms._redact import install_log_filter
from aiosms.cli._settings import Settings

__all__ = [
    "PHONE_FIELDS",
    "RowStream",
    "emit",
    "phone",
    "progress",
    "setup_logging",
    "stderr_console",
]

Row = Mapping[str, Any]

#: Row fields that hold a phone number (masked unless --show-numbers).
PHONE_FIELDS = frozenset({"to", "phone"})


def phone(number: str | None, settings: Settings) -> str | None:
    """``number`` as the output may show it."""
    return number if settings.show_numbers else mask_phone(number)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value, str):  # a str enum such as DeliveryState
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def emit(
    rows: Sequence[Row],
    settings: Settings,
    *,
    single: bool = False,
    title: str | None = None,
) -> None:
    """Write ``rows`` to stdout in the chosen format.

    ``single``: the command answers with one object (``send``, ``balance``): JSON is
    that object rather than a list of one, and the table shows it as field/value pairs.
    """
    clean = [_clean(row, settings) for row in rows]
    _WRITERS[settings.output](clean, single, title)


def _clean(row: Row, settings: Settings) -> dict[str, Any]:
    return {
        key: (phone(value, settings) if key in PHONE_FIELDS else _plain(value))
        for key, value in row.items()
    }


def _columns(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _write_table(rows: Sequence[Row], single: bool, title: str | None) -> None:
    console = Console(file=sys.stdout)
    if single and len(rows) == 1:
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in rows[0].items():
            table.add_row(key, _text(value))
    else:
        table = Table(title=title)
        columns = _columns(rows)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_text(row.get(column)) for column in columns))
    console.print(table)


def _write_json(rows: Sequence[Row], single: bool, title: str | None) -> None:
    data: Any = rows[0] if single and len(rows) == 1 else list(rows)
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def _write_jsonl(rows: Sequence[Row], single: bool, title: str | None) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(rows: Sequence[Row], single: bool, title: str | None) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _text(value) for key, value in row.items()})


_WRITERS = {
    "table": _write_table,
    "json": _write_json,
    "jsonl": _write_jsonl,
    "csv": _write_csv,
}


class RowStream:
    """Rows written to stdout as they come, in the chosen format, never all held at once.

    For commands whose rows come a page at a time (``campaign export`` of a million
    rows): JSON is one list written item by item (the same text :func:`emit` writes),
    JSON lines and CSV a line per row under a fixed header, and a table is drawn a
    page of rows at a time. Call :meth:`write` per row, then :meth:`close`.
    """

    #: Rows per drawn table: rich measures a table's rows before drawing any.
    TABLE_PAGE = 1000

    def __init__(self, settings: Settings, columns: Sequence[str]) -> None:
        self._settings = settings
        self._columns = list(columns)
        self._format = settings.output
        self._page: list[dict[str, Any]] = []
        self.count = 0
        if self._format == "csv":
            self._csv = csv.DictWriter(sys.stdout, fieldnames=self._columns, lineterminator="\n")
            self._csv.writeheader()

    def write(self, row: Row) -> None:
        """Write one row (its phone numbers masked unless ``--show-numbers``)."""
        clean = _clean(row, self._settings)
        if self._format == "jsonl":
            sys.stdout.write(json.dumps(clean, ensure_ascii=False) + "\n")
        elif self._format == "json":
            sys.stdout.write(
                ("[" if not self.count else ", ") + json.dumps(clean, ensure_ascii=False)
            )
        elif self._format == "csv":
            self._csv.writerow({key: _text(value) for key, value in clean.items()})
        else:
            self._page.append(clean)
            if len(self._page) >= self.TABLE_PAGE:
                self._draw()
        self.count += 1

    def close(self) -> int:
        """End the output (a JSON list's bracket, the last table); the rows written."""
        if self._format == "json":
            sys.stdout.write(("[" if not self.count else "") + "]\n")
        elif self._page:
            self._draw()
        return self.count

    def _draw(self) -> None:
        _write_table(self._page, False, None)
        self._page = []


def stderr_console() -> Console:
    """A console on stderr, for messages, warnings and progress."""
    return Console(file=sys.stderr)


def progress(**options: Any) -> AbstractContextManager[Progress | None]:
    """A rich progress display on stderr when it is a terminal, else nothing (``None``)."""
    console = stderr_console()
    if not console.is_terminal:
        return nullcontext(None)
    return Progress(console=console, transient=True, **options)


def setup_logging(verbosity: int) -> Callable[[], None]:
    """Log to stderr (-v INFO, -vv DEBUG), with passwords masked in httpx's URLs.

    Returns the function that puts the root logger back as it was (the command calls it
    on exit, so an embedding process, a test run for one, keeps its own logging).
    """
    install_log_filter()
    if verbosity <= 0:
        return lambda: None
    root = logging.getLogger()
    previous = root.level
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    return restore


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass
