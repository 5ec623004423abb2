"""The journal a command works in: opened, closed, and its failures turned into exit 1.

Every command that reads or writes campaigns goes through :func:`journal_session` (or
:func:`opened_campaign` for one campaign), so a database that fails mid-command is
named without its password and ends the command with exit 1, whatever was doing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import click

from aiosms.campaigns import Campaign, CampaignInfo, Journal
from aiosms.cli._exit import ExitCode
from aiosms.cli._journal import journal_label, open_journal, redact
from aiosms.cli._run import fail
from aiosms.cli._settings import Settings

__all__ = ["journal_session", "must_exist", "opened_campaign"]


@asynccontextmanager
async def opened_campaign(settings: Settings, name: str) -> AsyncIterator[Campaign]:
    """The campaign ``name`` in the journal, which is closed on exit."""
    async with journal_session(settings) as journal:
        yield await Campaign.open(journal, name)


@asynccontextmanager
async def journal_session(settings: Settings) -> AsyncIterator[Journal]:
    """The journal of ``--journal``, closed on exit; a database failure exits 1, named
    without its password (nothing more is claimed; rows on the wire settle next time)."""
    journal = open_journal(settings)
    try:
        yield journal
    except Exception as error:
        failure = _database_failure(error)
        if failure is None:
            raise
        text = redact(
            str(failure)
            if isinstance(failure, ConnectionError)
            else f"{type(failure).__name__}: {failure}",
            settings,
        )
        click.echo(f"aiosms: the journal {journal_label(settings)} failed: {text}", err=True)
        raise SystemExit(int(ExitCode.NOTHING_SENT)) from None
    finally:
        with anyio.CancelScope(shield=True):
            await journal.aclose()


def _database_failure(error: BaseException) -> BaseException | None:
    """The journal's own failure in ``error`` (a group's included), if that is what it is."""
    inner_errors = getattr(error, "exceptions", None)  # an exception group (3.11+, or anyio's)
    if isinstance(inner_errors, tuple):
        for inner in inner_errors:
            found = _database_failure(inner)
            if found is not None:
                return found
        return None
    # ConnectionError: PostgresJournal could not connect; psycopg's own errors otherwise.
    if isinstance(error, ConnectionError) or type(error).__module__.startswith("psycopg"):
        return error
    return None


def must_exist(settings: Settings, name: str) -> Mapping[str, Any]:
    """The stored settings of campaign ``name``; exit 1 with a clear message if none."""

    async def look() -> CampaignInfo | None:
        async with journal_session(settings) as journal:
            return await journal.get_campaign(name)

    info = anyio.run(look, backend=settings.backend)
    if info is None:
        fail(f"no campaign named {name!r} in {journal_label(settings)}", ExitCode.NOTHING_SENT)
    return info.settings
