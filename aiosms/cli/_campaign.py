"""``aiosms campaign …``: durable campaigns from a CSV file, through the journal of ``--journal``.

Each subcommand is a thin layer over ``aiosms.campaigns.Campaign``: it opens the
journal, does one thing, writes data on stdout and ends with an exit code from
``_exit``. This module holds the group, creation and the small commands; ``run``
lives in ``_campaign_run``, ``report`` and ``export`` in ``_campaign_rows``. Nothing
here resends an ``unknown`` row unless the user says so in words (``requeue
--accept-duplicates``).
"""

from __future__ import annotations

import time as _time
from datetime import time
from pathlib import Path
from typing import Any

import click

from aiosms.campaigns import Campaign, Journal, SqliteJournal
from aiosms.cli._campaign_rows import STATES, export, report
from aiosms.cli._campaign_run import run_campaign
from aiosms.cli._client import open_client
from aiosms.cli._journal import CsvRows, journal_label, read_csv
from aiosms.cli._output import emit
from aiosms.cli._run import run
from aiosms.cli._session import journal_session, must_exist, opened_campaign
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["campaign"]


async def _schema_version(journal: Journal) -> int:
    """The schema version the journal records (creating or upgrading its schema first)."""
    if isinstance(journal, SqliteJournal):
        return await journal.schema_version()
    from aiosms.campaigns._postgres import PostgresJournal

    assert isinstance(journal, PostgresJournal)
    return await journal.schema_version()


def _window(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[time, time] | None:
    if value is None:
        return None
    try:
        start, end = value.split("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HH:MM-HH:MM") from None


@click.group()
def campaign() -> None:
    """Durable campaigns: each message sent at most once, every state in the journal."""


# -- init -----------------------------------------------------------------------------


@campaign.command("init")
@pass_settings
def init(settings: Settings) -> None:
    """Create the journal of --journal, or upgrade its schema; print the schema version.

    Optional: the first command that uses a journal creates it too. On PostgreSQL the
    tables (aiosms_*) may live in the application's own database.
    """

    async def body() -> None:
        async with journal_session(settings) as journal:
            version = await _schema_version(journal)
        emit(
            [{"journal": journal_label(settings), "schema_version": version}],
            settings,
            single=True,
        )
        click.echo(f"journal ready, schema version {version}", err=True)

    run(settings, body)


# -- create ---------------------------------------------------------------------------


@campaign.command("create")
@click.argument("name")
@click.option(
    "--csv",
    "csv_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The rows: one message per line, with a header line.",
)
@click.option("--text", help="The same text for every row.")
@click.option("--template", help="A text with {column} fields, e.g. 'Hi {name}'.")
@click.option("--phone-column", default="phone", show_default=True, help="Column of numbers.")
@click.option("--key-column", metavar="COL", help="Column of row keys (default: line number).")
@click.option("--sender", "row_sender", metavar="NAME", help="Sender name of the campaign.")
@click.option("--max-parts", type=click.IntRange(1), help="Skip texts longer than N parts.")
@click.option("--budget", type=click.IntRange(1), help="Most SMS parts the campaign may use.")
@click.option("--window", callback=_window, metavar="HH:MM-HH:MM", help="Send only in these hours.")
@click.option("--tz", metavar="ZONE", help="Time zone of --window (default Moscow).")
@pass_settings
def create(
    settings: Settings,
    name: str,
    csv_path: Path,
    text: str | None,
    template: str | None,
    phone_column: str,
    key_column: str | None,
    row_sender: str | None,
    max_parts: int | None,
    budget: int | None,
    window: tuple[time, time] | None,
    tz: str | None,
) -> None:
    """Create the campaign NAME from a CSV file, or add its new rows (idempotent).

    Rows already in the campaign (same key) are left alone; rows that cannot be sent
    (a bad number, an empty text) are recorded as skipped with their CSV line number.
    """
    if (text is None) == (template is None):
        raise click.UsageError("give exactly one of --text and --template")
    rows = read_csv(
        csv_path, phone_column=phone_column, key_column=key_column, text=text, template=template
    )
    options = {
        "sender": row_sender or settings.sender,
        "window": window,
        "tz": tz,
        "budget": budget,
        "max_parts": max_parts,
    }
    run(settings, lambda: _import_csv(settings, name, rows, options))


async def _import_csv(
    settings: Settings, name: str, rows: CsvRows, options: dict[str, Any]
) -> None:
    async with journal_session(settings) as journal:
        existing = await journal.get_campaign(name)
        made = await Campaign.create(journal, name, [], **options)
        valid = await made.add(rows.messages())
        # Collected while the messages were read: recorded as skipped.
        refused = await made.add(invalid=rows.invalid)
        counts = await made.counts()
    added = valid.added + refused.added
    skipped = valid.skipped + refused.skipped
    result = {
        "name": name,
        "created": existing is None,
        "added": added - skipped,
        "already_present": rows.total - added,
        "skipped": skipped,
        "pending": counts["pending"],
    }
    emit([result], settings, single=True)
    click.echo(
        f"campaign {name}: added {added - skipped}, already present {rows.total - added}, "
        f"skipped {skipped}",
        err=True,
    )


# -- reading --------------------------------------------------------------------------


@campaign.command("status")
@click.argument("name")
@pass_settings
def status(settings: Settings, name: str) -> None:
    """Where NAME stands: its state and the rows in each state."""

    must_exist(settings, name)

    async def body() -> None:
        async with opened_campaign(settings, name) as found:
            summary = await found.summary()
            info = await found.journal.get_campaign(name)
            recent = await found.journal.settled_since(found.id, _time.time() - _RATE_SPAN)
        left = sum(summary.counts[s] for s in ("pending", "claimed", "sending"))
        rate = recent / _RATE_SPAN if recent else None
        row: dict[str, Any] = {
            "name": name,
            "state": summary.state,
            "reason": summary.reason,
            "counts": dict(summary.counts),
            "parts": summary.parts,
            "cost": summary.cost,
            # Over the last minute: known while a run is going, None otherwise.
            "rate": None if rate is None else round(rate, 3),
            "eta_seconds": None if rate is None or not left else round(left / rate),
            "settings": dict(info.settings) if info else {},
        }
        if settings.output in ("table", "csv"):
            flat = {k: v for k, v in row.items() if k not in ("counts", "settings")}
            emit([{**flat, **summary.counts}], settings, single=True)
        else:
            emit([row], settings, single=True)

    run(settings, body)


@campaign.command("list")
@pass_settings
def list_campaigns(settings: Settings) -> None:
    """Every campaign in the journal, with its rows per state."""

    async def body() -> None:
        async with journal_session(settings) as journal:
            rows = []
            for info in await journal.list_campaigns():
                counts = await journal.counts(info.id)
                rows.append({"name": info.name, "state": info.state, **counts})
        if rows or settings.output != "table":
            emit(rows, settings)
        else:
            click.echo(f"no campaigns in {journal_label(settings)}", err=True)

    run(settings, body)


#: Seconds over which ``status`` measures the sending rate.
_RATE_SPAN = 60.0


# -- changing -------------------------------------------------------------------------


@campaign.command("pause")
@click.argument("name")
@click.option("--reason", default="paused by the user", show_default=True)
@pass_settings
def pause(settings: Settings, name: str, reason: str) -> None:
    """Pause NAME: a running worker stops claiming and returns paused (exit 5)."""

    must_exist(settings, name)

    async def body() -> None:
        async with opened_campaign(settings, name) as found:
            await found.pause(reason)
        click.echo(f"campaign {name} paused", err=True)

    run(settings, body)


@campaign.command("resume")
@click.argument("name")
@pass_settings
def resume(settings: Settings, name: str) -> None:
    """Let NAME run again; rows refused for an account-level reason go back in line."""

    must_exist(settings, name)

    async def body() -> None:
        async with opened_campaign(settings, name) as found:
            requeued = await found.resume()
        emit([{"name": name, "requeued": requeued}], settings, single=True)

    run(settings, body)


@campaign.command("requeue")
@click.argument("name")
@click.option("--state", type=STATES, default="unknown", show_default=True)
@click.option(
    "--accept-duplicates",
    is_flag=True,
    help="Needed for unknown and accepted rows: sending them again may deliver an SMS twice.",
)
@pass_settings
def requeue(settings: Settings, name: str, state: str, accept_duplicates: bool) -> None:
    """Put NAME's rows in --state back to pending, so the next run sends them."""
    if state in ("pending", "claimed", "sending"):
        raise click.UsageError(f"{state} rows cannot be requeued")
    if state in ("unknown", "accepted") and not accept_duplicates:
        raise click.UsageError(
            f"{state} rows may have been sent already: sending them again may deliver an SMS "
            f"twice. Add --accept-duplicates if that is what you want"
        )

    must_exist(settings, name)

    async def body() -> None:
        async with opened_campaign(settings, name) as found:
            count = await found.requeue(state, accept_duplicates=accept_duplicates)
        emit([{"name": name, "state": state, "requeued": count}], settings, single=True)

    run(settings, body)


@campaign.command("track")
@click.argument("name")
@click.option(
    "--deadline", type=click.FloatRange(min=0), default=3600.0, show_default=True,
    help="Stop polling after this many seconds.",
)  # fmt: skip
@click.option(
    "--interval", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
    help="Seconds between polls (longer while nothing changes).",
)  # fmt: skip
@pass_settings
def track(settings: Settings, name: str, deadline: float, interval: float) -> None:
    """Poll the delivery states of NAME's accepted messages into the journal."""

    must_exist(settings, name)

    async def body() -> None:
        changes = 0
        async with opened_campaign(settings, name) as found, open_client(settings) as client:
            async for _ in found.track(client, interval=interval, deadline=deadline):
                changes += 1
            delivery: dict[str, int] = {}
            async for row in found.export("accepted"):
                label = row.delivery or "none"
                delivery[label] = delivery.get(label, 0) + 1
        emit([{"name": name, "changes": changes, **delivery}], settings, single=True)

    run(settings, body, interruptible=True)


@campaign.command("purge")
@click.option(
    "--older-than", "days", type=click.FloatRange(min=0), required=True, metavar="DAYS",
    help="Delete campaigns with no activity for this many days.",
)  # fmt: skip
@pass_settings
def purge(settings: Settings, days: float) -> None:
    """Delete old campaigns and their rows (personal data) from the journal."""

    async def body() -> None:
        async with journal_session(settings) as journal:
            names = await journal.purge_campaigns(_time.time() - days * 86400)
        emit([{"purged": name} for name in names], settings)
        click.echo(f"purged {len(names)} campaign(s)", err=True)

    run(settings, body)


campaign.add_command(run_campaign)
campaign.add_command(report)
campaign.add_command(export)
