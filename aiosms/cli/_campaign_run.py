"""``aiosms campaign run``: send a campaign's pending rows, or check them (``--dry-run``).

The command checks that the campaign can be sent (a sender name for my-sms, the
user's confirmation), runs ``Campaign.run`` with a progress display on stderr, and
drains on SIGINT or SIGTERM (a second signal stops at once). Nothing here resends
an ``unknown`` row: a rerun goes on where the last run stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
import time as _time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
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
from aiosms.campaigns import Campaign, Summary
from aiosms.cli._campaign_rows import summary_row
from aiosms.cli._client import open_client
from aiosms.cli._commands import _price
from aiosms.cli._credentials import ConfigError
from aiosms.cli._exit import ExitCode
from aiosms.cli._output import emit, stderr_console
from aiosms.cli._run import fail, run
from aiosms.cli._session import must_exist, opened_campaign
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["run_campaign"]

_T = TypeVar("_T")


def _exit_for(summary: Summary) -> ExitCode:
    """Not finished (paused, window, interrupted, rows left) is 5; then unknown wins."""
    if summary.state != "done":
        return ExitCode.INTERRUPTED
    if summary.counts.get("unknown"):
        return ExitCode.UNKNOWN
    if summary.counts.get("rejected"):
        return ExitCode.REJECTED
    return ExitCode.OK


@click.command("run")
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
    stored = must_exist(settings, name)
    if dry_run:
        run(settings, lambda: _dry_run(settings, name, price))
    _check_ready(settings, name, stored, confirm)
    options = {"rate": rate, "max_concurrency": max_concurrency, "packet_size": packet_size}
    run(settings, lambda: _send(settings, name, options))


def _check_ready(
    settings: Settings, name: str, stored: Mapping[str, Any], confirm: str | None
) -> None:
    """Exit, or raise a usage error, unless the campaign may be sent now."""
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


async def _send(settings: Settings, name: str, options: Mapping[str, Any]) -> ExitCode:
    async with opened_campaign(settings, name) as found, open_client(settings) as client:
        # Signals are watched from just before run() starts: none can come between
        # the watch and run(), where an interrupt would find no run to stop.
        summary = await _with_progress(
            found,
            lambda: _draining_on_signals(
                found,
                # To the end: the last rows other workers hold are waited for.
                lambda: found.run(client, **options, wait_for_others=True),
            ),
        )
    if summary is None:
        click.echo(f"campaign {name}: stopped at once; run it again to go on", err=True)
        return ExitCode.INTERRUPTED
    emit([summary_row(summary)], settings, single=True)
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
    async with opened_campaign(settings, name) as found:
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
