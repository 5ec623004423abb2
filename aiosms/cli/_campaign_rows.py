"""A campaign's rows out: ``campaign report`` (the summary, ``--csv`` every row's state)
and ``campaign export`` (rows on stdout), both streamed.

A campaign may hold millions of rows: they are read a page at a time
(``Campaign.export``, one ``Journal.rows`` call per page) and written as they come,
so memory holds one page whatever the campaign's size. Phone numbers are masked
unless ``--show-numbers``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click

from aiosms._models import mask_phone
from aiosms.campaigns import Row, Summary
from aiosms.cli._output import RowStream, emit
from aiosms.cli._run import run
from aiosms.cli._session import must_exist, opened_campaign
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["REPORT_COLUMNS", "STATES", "export", "report", "summary_row"]

#: The columns of `report --csv` and of `export`, in order.
REPORT_COLUMNS = (
    "key", "phone", "state", "reason", "message_id", "parts", "cost", "delivery",
    "error_class", "error_code", "error_text", "sent_at", "settled_at",
)  # fmt: skip

STATES = click.Choice(
    ["pending", "claimed", "sending", "accepted", "rejected", "unknown", "skipped"]
)


def summary_row(summary: Summary) -> dict[str, Any]:
    """A run's or a report's summary as one output row."""
    return {
        "name": summary.name,
        "state": summary.state,
        "reason": summary.reason,
        "sent": summary.sent,
        **summary.counts,
        "parts": summary.parts,
        "cost": summary.cost,
    }


def _report_row(row: Row) -> dict[str, Any]:
    values = {column: getattr(row, column) for column in REPORT_COLUMNS}
    values["state"] = row.state.value
    return values


def _cell(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@click.command("report")
@click.argument("name")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every row's final state to this file (numbers masked unless --show-numbers).",
)
@pass_settings
def report(settings: Settings, name: str, csv_path: Path | None) -> None:
    """The summary of NAME: rows per state and delivery state, parts and cost."""

    must_exist(settings, name)

    async def body() -> None:
        delivery: dict[str, int] = {}
        async with opened_campaign(settings, name) as found:
            summary = await found.summary()
            with _CsvFile(csv_path, settings) as out:
                async for row in found.results():
                    if row.delivery is not None:
                        delivery[row.delivery] = delivery.get(row.delivery, 0) + 1
                    out.write(row)
        result = summary_row(summary)
        del result["sent"]
        result.update({f"delivery_{state}": count for state, count in sorted(delivery.items())})
        emit([result], settings, single=True, title=f"campaign {name}")
        if csv_path is not None:
            click.echo(f"wrote every row's state to {csv_path}", err=True)

    run(settings, body)


class _CsvFile:
    """``report --csv``'s file, a row written as each is read (nothing when no path)."""

    def __init__(self, path: Path | None, settings: Settings) -> None:
        self._path = path
        self._show_numbers = settings.show_numbers
        self._handle: Any = None
        self._writer: csv.DictWriter[str] | None = None

    def __enter__(self) -> _CsvFile:
        if self._path is not None:
            self._handle = self._path.open("w", encoding="utf-8", newline="")
            self._writer = csv.DictWriter(self._handle, fieldnames=list(REPORT_COLUMNS))
            self._writer.writeheader()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, row: Row) -> None:
        if self._writer is None:
            return
        shown = row.phone if self._show_numbers else mask_phone(row.phone)
        cells = {k: "" if v is None else _cell(v) for k, v in _report_row(row).items()}
        self._writer.writerow(cells | {"phone": shown})


@click.command("export")
@click.argument("name")
@click.option("--state", type=STATES, help="Only rows in this state (all rows otherwise).")
@pass_settings
def export(settings: Settings, name: str, state: str | None) -> None:
    """NAME's rows on stdout in the --output format (numbers masked unless --show-numbers)."""

    must_exist(settings, name)

    async def body() -> None:
        out = RowStream(settings, REPORT_COLUMNS)
        async with opened_campaign(settings, name) as found:
            async for row in found.export(state):
                out.write(_report_row(row))
        if not out.close() and settings.output == "table":
            click.echo(f"no {state or ''} rows in campaign {name}".replace("  ", " "), err=True)

    run(settings, body)
