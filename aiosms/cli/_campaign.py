"""``aiosms campaign …``: durable campaigns from a CSV file, through the journal of ``--journal``.

Each subcommand is a thin layer over ``aiosms.campaigns.Campaign``: it opens the
journal, does one thing, writes data on stdout and ends with an exit code from
``_exit``. Nothing here resends an ``unknown`` row unless the user says so in words
(``requeue --accept-duplicates``).
"""

from __future__ import annotations

import csv
import signal
import sys
import threading
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from aiosms._errors import SmsError
from aiosms._models import mask_phone
from aiosms.campaigns import (
    Campaign,
    CampaignInfo,
    ImportResult,
    Journal,
    Row,
    SqliteJournal,
    Summary,
)
from aiosms.cli._client import open_client
from aiosms.cli._commands import _price
from aiosms.cli._credentials import ConfigError
from aiosms.cli._exit import ExitCode
from aiosms.cli._journal import journal_label, open_journal, read_csv, redact
from aiosms.cli._output import emit, stderr_console
from aiosms.cli._run import fail, run
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["campaign"]

_T = TypeVar("_T")

#: The columns of `report --csv` and of `export`, in order.
_REPORT_COLUMNS = (
    "key", "phone", "state", "reason", "message_id", "parts", "cost", "delivery",
    "error_class", "error_code", "error_text", "sent_at", "settled_at",
)  # fmt: skip


@asynccontextmanager
async def _opened(settings: Settings, name: str) -> AsyncIterator[Campaign]:
    """The campaign ``name`` in the journal, which is closed on exit."""
    async with _journal(settings) as journal:
        yield await Campaign.open(journal, name)


@asynccontextmanager
async def _journal(settings: Settings) -> AsyncIterator[Journal]:
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


async def _schema_version(journal: Journal) -> int:
    """The schema version the journal records (creating or upgrading its schema first)."""
    if isinstance(journal, SqliteJournal):
        return await journal.schema_version()
    from aiosms.campaigns._postgres import PostgresJournal

    assert isinstance(journal, PostgresJournal)
    return await journal.schema_version()


def _must_exist(settings: Settings, name: str) -> Mapping[str, Any]:
    """The stored settings of campaign ``name``; exit 1 with a clear message if none."""

    async def look() -> CampaignInfo | None:
        async with _journal(settings) as journal:
            return await journal.get_campaign(name)

    info = anyio.run(look, backend=settings.backend)
    if info is None:
        fail(f"no campaign named {name!r} in {journal_label(settings)}", ExitCode.NOTHING_SENT)
    return info.settings


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


def _summary_row(summary: Summary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "state": summary.state,
        "reason": summary.reason,
        "sent": summary.sent,
        **summary.counts,
        "parts": summary.parts,
        "cost": summary.cost,
    }


def _exit_for(summary: Summary) -> ExitCode:
    """Not finished (paused, window, interrupted, rows left) is 5; then unknown wins."""
    if summary.state != "done":
        return ExitCode.INTERRUPTED
    if summary.counts.get("unknown"):
        return ExitCode.UNKNOWN
    if summary.counts.get("rejected"):
        return ExitCode.REJECTED
    return ExitCode.OK


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
        async with _journal(settings) as journal:
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

    async def body() -> None:
        async with _journal(settings) as journal:
            existing = await journal.get_campaign(name)
            made = await Campaign.create(
                journal,
                name,
                [],
                sender=row_sender or settings.sender,
                window=window,
                tz=tz,
                budget=budget,
                max_parts=max_parts,
            )
            valid = await made.add(rows.messages())
            # Collected while the messages were read: recorded as skipped.
            refused = await made.add(invalid=rows.invalid)
            result = ImportResult(valid.added + refused.added, valid.skipped + refused.skipped)
            counts = await made.counts()
        total = rows.total
        emit(
            [
                {
                    "name": name,
                    "created": existing is None,
                    "added": result.added - result.skipped,
                    "already_present": total - result.added,
                    "skipped": result.skipped,
                    "pending": counts["pending"],
                }
            ],
            settings,
            single=True,
        )
        click.echo(
            f"campaign {name}: added {result.added - result.skipped}, already present "
            f"{total - result.added}, skipped {result.skipped}",
            err=True,
        )

    run(settings, body)


# -- run ------------------------------------------------------------------------------


@campaign.command("run")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Check and estimate; send nothing.")
@click.option("--confirm", metavar="NAME", help="The campaign's name: needed without a terminal.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Messages per second.")
@click.option("--max-concurrency", type=click.IntRange(1), help="Requests in flight at once.")
@click.option(
    "--packet-size", type=click.IntRange(1), default=1000, show_default=True,
    help="Messages per request (my-sms packets); an unanswered packet is all unknown.",
)  # fmt: skip
@click.option("--price", callback=_price, metavar="PRICE", help="Price of one SMS part.")
@pass_settings
def run_campaign(
    settings: Settings,
    name: str,
    dry_run: bool,
    confirm: str | None,
    rate: float | None,
    max_concurrency: int | None,
    packet_size: int,
    price: Decimal | None,
) -> None:
    """Send what NAME has pending; after a crash or kill, run it again to go on.

    Rows that were on the wire when a run died become unknown and are not sent again.
    Exit 0 all accepted, 3 some rejected, 4 some unknown, 5 paused or interrupted.
    """
    stored = _must_exist(settings, name)
    if dry_run:
        run(settings, lambda: _dry_run(settings, name, price))
    if settings.gateway == "mysms" and not (settings.sender or stored.get("sender")):
        # my-sms needs one (1000sms falls back to the account's): without it every row
        # would be refused, unsent.
        fail(
            f"campaign {name!r} has no sender name: give --sender to 'campaign create', "
            "or before 'campaign'",
            ExitCode.NOTHING_SENT,
        )
    if confirm is not None and confirm != name:
        raise click.UsageError(f"--confirm {confirm!r} does not match the campaign {name!r}")
    if confirm is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"stdin is not a terminal: pass --confirm {name} to send this campaign"
            )
        click.confirm(f"Send the pending messages of campaign {name!r}?", abort=True, err=True)

    async def body() -> ExitCode:
        async with _opened(settings, name) as found, open_client(settings) as client:
            summary = await _draining_on_signals(
                found,
                lambda: _with_progress(
                    found,
                    # To the end: the last rows other workers hold are waited for.
                    lambda: found.run(
                        client,
                        rate=rate,
                        max_concurrency=max_concurrency,
                        packet_size=packet_size,
                        wait_for_others=True,
                    ),
                ),
            )
        if summary is None:
            click.echo(f"campaign {name}: stopped at once; run it again to go on", err=True)
            return ExitCode.INTERRUPTED
        emit([_summary_row(summary)], settings, single=True)
        if summary.state in ("paused", "window", "interrupted"):
            hint = f"; then: aiosms campaign resume {name}" if summary.state == "paused" else ""
            click.echo(f"campaign {name} {summary.state}: {summary.reason}{hint}", err=True)
        if summary.counts.get("unknown"):
            click.echo(
                f"campaign {name}: {summary.counts['unknown']} unknown outcome(s): they may "
                f"have been sent and are never resent by aiosms; see "
                f"'aiosms campaign export {name} --state unknown'",
                err=True,
            )
        return _exit_for(summary)

    run(settings, body)


async def _draining_on_signals(
    found: Campaign, work: Callable[[], Awaitable[Summary]]
) -> Summary | None:
    """``work()``; SIGINT or SIGTERM drains it, a second one stops it at once (None).

    Draining: nothing more is claimed or sent, packets on the wire settle and are
    recorded, claimed rows go back to pending. Stopping at once cancels the requests
    in flight: their rows stay ``sending`` and the next run marks them unknown.
    """
    result: list[Summary] = []
    if threading.current_thread() is not threading.main_thread():
        # Signals reach the main thread only (a test runner may call us from another).
        return await work()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                seen = 0
                async for number in signals:
                    seen += 1
                    received = signal.Signals(number).name
                    if seen == 1:
                        click.echo(
                            f"aiosms: interrupted by {received}: finishing the requests on the "
                            f"wire (again to stop at once)",
                            err=True,
                        )
                        found.interrupt(f"interrupted by {received}")
                    else:
                        click.echo(f"aiosms: interrupted by {received} again", err=True)
                        tg.cancel_scope.cancel()

            tg.start_soon(watch)
            result.append(await work())
            tg.cancel_scope.cancel()
    return result[0] if result else None


async def _with_progress(found: Campaign, work: Callable[[], Awaitable[_T]]) -> _T:
    """``work()``, with a progress display on stderr fed from the journal's counts."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:.0f} msg/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tally]}"),
    )
    console = stderr_console()
    if not console.is_terminal:
        return await work()
    with Progress(*columns, console=console, transient=True) as bar:
        counts = await found.counts()
        settled = ("accepted", "rejected", "unknown")
        total = sum(counts[s] for s in (*settled, "pending", "claimed", "sending"))
        task = bar.add_task(found.name, total=total, rate=0.0, tally="")
        result: list[_T] = []

        async def watch() -> None:
            start, first = _time.monotonic(), sum(counts[s] for s in settled)
            while True:
                await anyio.sleep(0.5)
                now = await found.counts()
                done = sum(now[s] for s in settled)
                elapsed = max(_time.monotonic() - start, 1e-6)
                tally = " ".join(f"{s} {now[s]}" for s in settled)
                bar.update(task, completed=done, rate=(done - first) / elapsed, tally=tally)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            result.append(await work())
            tg.cancel_scope.cancel()
        return result[0]


async def _dry_run(settings: Settings, name: str, price: Decimal | None) -> ExitCode:
    async with _opened(settings, name) as found:
        stop = {phone for phone, _ in await found.journal.stoplist()}
        window = found.window
        messages = parts = stopped = 0
        async for row in found.export("pending"):
            if row.phone in stop:
                stopped += 1
                continue
            messages += 1
            parts += row.parts
        invalid = [
            row async for row in found.export("skipped") if (row.reason or "").startswith("invalid")
        ]
        counts = await found.counts()
    balance: Decimal | None = None
    try:
        async with open_client(settings) as client:
            balance = (await client.balance()).amount
    except SmsError as error:
        click.echo(f"aiosms: cannot read the balance: {type(error).__name__}: {error}", err=True)
    except ConfigError as error:
        click.echo(f"aiosms: cannot read the balance: {error.message}", err=True)
    cost = None if price is None else price * parts
    now = datetime.now(timezone.utc)
    result: dict[str, Any] = {
        "name": name,
        "to_send": messages,
        "parts": parts,
        "stop_listed": stopped,
        "skipped": counts["skipped"],
        "invalid": len(invalid),
        "window_open": None if window is None else window.is_open(now),
        "price": price,
        "cost": cost,
        "balance": balance,
        "enough_balance": None if cost is None or balance is None else balance >= cost,
    }
    if window is not None and not window.is_open(now):
        result["window_opens"] = window.next_opening(now)
    if settings.output in ("json", "jsonl"):
        result["invalid_rows"] = [{"key": r.key, "reason": r.reason} for r in invalid]
    emit([result], settings, single=True)
    for row in invalid:
        click.echo(f"invalid row {row.key}: {row.reason}", err=True)
    if result["enough_balance"] is False:
        click.echo(f"the estimated cost {cost} is more than the balance {balance}", err=True)
    return ExitCode.OK


# -- reading --------------------------------------------------------------------------


@campaign.command("status")
@click.argument("name")
@pass_settings
def status(settings: Settings, name: str) -> None:
    """Where NAME stands: its state and the rows in each state."""

    _must_exist(settings, name)

    async def body() -> None:
        async with _opened(settings, name) as found:
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
        async with _journal(settings) as journal:
            rows = []
            for info in await journal.list_campaigns():
                counts = await journal.counts(info.id)
                rows.append({"name": info.name, "state": info.state, **counts})
        if rows or settings.output != "table":
            emit(rows, settings)
        else:
            click.echo(f"no campaigns in {journal_label(settings)}", err=True)

    run(settings, body)


def _report_row(row: Row, settings: Settings) -> dict[str, Any]:
    values = {column: getattr(row, column) for column in _REPORT_COLUMNS}
    values["state"] = row.state.value
    return values


@campaign.command("report")
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

    _must_exist(settings, name)

    async def body() -> None:
        delivery: dict[str, int] = {}
        async with _opened(settings, name) as found:
            summary = await found.summary()
            writer = None
            handle = None
            try:
                if csv_path is not None:
                    handle = csv_path.open("w", encoding="utf-8", newline="")
                    writer = csv.DictWriter(handle, fieldnames=list(_REPORT_COLUMNS))
                    writer.writeheader()
                async for row in found.results():
                    if row.delivery is not None:
                        delivery[row.delivery] = delivery.get(row.delivery, 0) + 1
                    if writer is not None:
                        shown = row.phone if settings.show_numbers else mask_phone(row.phone)
                        writer.writerow(
                            {"phone": shown}
                            | {
                                k: "" if v is None else _cell(v)
                                for k, v in _report_row(row, settings).items()
                                if k != "phone"
                            }
                        )
            finally:
                if handle is not None:
                    handle.close()
        result = _summary_row(summary)
        del result["sent"]
        result.update({f"delivery_{state}": count for state, count in sorted(delivery.items())})
        emit([result], settings, single=True, title=f"campaign {name}")
        if csv_path is not None:
            click.echo(f"wrote every row's state to {csv_path}", err=True)

    run(settings, body)


def _cell(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


#: Seconds over which ``status`` measures the sending rate.
_RATE_SPAN = 60.0

_STATES = click.Choice(
    ["pending", "claimed", "sending", "accepted", "rejected", "unknown", "skipped"]
)


@campaign.command("export")
@click.argument("name")
@click.option("--state", type=_STATES, help="Only rows in this state (all rows otherwise).")
@pass_settings
def export(settings: Settings, name: str, state: str | None) -> None:
    """NAME's rows on stdout in the --output format (numbers masked unless --show-numbers)."""

    _must_exist(settings, name)

    async def body() -> None:
        async with _opened(settings, name) as found:
            rows = [_report_row(row, settings) async for row in found.export(state)]
        if rows or settings.output != "table":
            emit(rows, settings)
        else:
            click.echo(f"no {state or ''} rows in campaign {name}".replace("  ", " "), err=True)

    run(settings, body)


# -- changing -------------------------------------------------------------------------


@campaign.command("pause")
@click.argument("name")
@click.option("--reason", default="paused by the user", show_default=True)
@pass_settings
def pause(settings: Settings, name: str, reason: str) -> None:
    """Pause NAME: a running worker stops claiming and returns paused (exit 5)."""

    _must_exist(settings, name)

    async def body() -> None:
        async with _opened(settings, name) as found:
            await found.pause(reason)
        click.echo(f"campaign {name} paused", err=True)

    run(settings, body)


@campaign.command("resume")
@click.argument("name")
@pass_settings
def resume(settings: Settings, name: str) -> None:
    """Let NAME run again; rows refused for an account-level reason go back in line."""

    _must_exist(settings, name)

    async def body() -> None:
        async with _opened(settings, name) as found:
            requeued = await found.resume()
        emit([{"name": name, "requeued": requeued}], settings, single=True)

    run(settings, body)


@campaign.command("requeue")
@click.argument("name")
@click.option("--state", type=_STATES, default="unknown", show_default=True)
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

    _must_exist(settings, name)

    async def body() -> None:
        async with _opened(settings, name) as found:
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

    _must_exist(settings, name)

    async def body() -> None:
        changes = 0
        async with _opened(settings, name) as found, open_client(settings) as client:
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
        async with _journal(settings) as journal:
            names = await journal.purge_campaigns(_time.time() - days * 86400)
        emit([{"purged": name} for name in names], settings)
        click.echo(f"purged {len(names)} campaign(s)", err=True)

    run(settings, body)
