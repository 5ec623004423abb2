"""``aiosms stoplist …``: the journal's stop list, shared by every campaign in it.

Numbers are normalised as messages' are, so a number added in any spelling stops
every row with that number, at import and again when a row is claimed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import click

from aiosms._errors import ValidationError
from aiosms._validation import normalize_phone
from aiosms.cli._output import emit
from aiosms.cli._run import run
from aiosms.cli._session import journal_session
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["stoplist"]


def _numbers(values: tuple[str, ...]) -> list[str]:
    numbers = []
    for value in values:
        try:
            numbers.append(normalize_phone(value))
        except ValidationError as error:
            raise click.BadParameter(f"{value!r}: {error.rule}", param_hint="PHONE") from None
    return numbers


@click.group()
def stoplist() -> None:
    """Numbers no campaign sends to (checked at import and when rows are claimed)."""


@stoplist.command("add")
@click.argument("phones", metavar="PHONE...", nargs=-1, required=True)
@click.option("--reason", default="added by hand", show_default=True)
@pass_settings
def add(settings: Settings, phones: tuple[str, ...], reason: str) -> None:
    """Add numbers to the stop list."""
    numbers = _numbers(phones)

    async def body() -> None:
        async with journal_session(settings) as journal:
            added = await journal.stoplist_add((n, reason) for n in numbers)
        emit([{"added": added, "already_listed": len(set(numbers)) - added}], settings, single=True)

    run(settings, body)


@stoplist.command("remove")
@click.argument("phones", metavar="PHONE...", nargs=-1, required=True)
@pass_settings
def remove(settings: Settings, phones: tuple[str, ...]) -> None:
    """Remove numbers from the stop list."""
    numbers = _numbers(phones)

    async def body() -> None:
        async with journal_session(settings) as journal:
            removed = await journal.stoplist_remove(numbers)
        emit([{"removed": removed}], settings, single=True)

    run(settings, body)


@stoplist.command("list")
@pass_settings
def list_numbers(settings: Settings) -> None:
    """Every number on the stop list (masked unless --show-numbers)."""

    async def body() -> None:
        async with journal_session(settings) as journal:
            entries = await journal.stoplist()
        if entries or settings.output != "table":
            emit([{"phone": p, "reason": r} for p, r in entries], settings)
        else:
            click.echo("the stop list is empty", err=True)

    run(settings, body)


@stoplist.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="imported", show_default=True)
@pass_settings
def import_numbers(settings: Settings, path: Path, reason: str) -> None:
    """Add the numbers of a file: one a line, or the first column of a CSV.

    A header line and lines that are not numbers are reported on stderr and left out.
    """
    numbers: list[str] = []
    bad = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            value = row[0].strip() if row else ""
            if not value:
                continue
            try:
                numbers.append(normalize_phone(value))
            except ValidationError:
                bad += 1
                click.echo(f"line {line}: not a phone number, left out", err=True)

    async def body() -> None:
        async with journal_session(settings) as journal:
            added = await journal.stoplist_add((n, reason) for n in numbers)
        emit(
            [{"added": added, "already_listed": len(set(numbers)) - added, "not_numbers": bad}],
            settings,
            single=True,
        )

    run(settings, body)
