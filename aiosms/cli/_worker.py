"""``aiosms worker``: a long-running process that sends the running campaigns of a journal.

Many workers, on many machines, share one PostgreSQL journal: each claims a few
packets at a time (``FOR UPDATE SKIP LOCKED``), so they split every campaign between
them, and each one's ``Campaign.run`` reaps the rows of workers that stopped beating.
A worker looks for campaigns to work on every ``--poll`` seconds (created, resumed,
or given new rows since), and runs each in its own task. SIGTERM (or one Ctrl-C)
drains: nothing more is claimed, the packets on the wire settle and are recorded,
claimed rows go back to pending, exit 0; a second signal stops at once (exit 5:
the packets that were on the wire become ``unknown`` when the next worker reaps
them). Nothing here sends on its own: sending is ``Campaign.run``'s.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import click

from aiosms._errors import SmsError
from aiosms.campaigns import Campaign, CampaignInfo, Journal
from aiosms.cli._client import Client, open_client
from aiosms.cli._exit import ExitCode
from aiosms.cli._output import emit
from aiosms.cli._run import run
from aiosms.cli._session import journal_session
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["worker"]

#: Rows in these states mean a campaign has work left (claimed and sending rows of a
#: lost worker come back, or are settled as unknown, when a run reaps them).
_OPEN = ("pending", "claimed", "sending")


@click.command("worker")
@click.option(
    "--campaign",
    "names",
    multiple=True,
    metavar="NAME",
    help="Work on this campaign only (repeatable); every running campaign otherwise.",
)
@click.option(
    "--poll", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
    help="Seconds between looks for campaigns created, resumed or given rows.",
)  # fmt: skip
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True),
    help="Messages per second of each campaign, shared by all the workers running it.",
)  # fmt: skip
@click.option("--max-concurrency", type=click.IntRange(1), help="Requests in flight at once.")
@click.option(
    "--packet-size", type=click.IntRange(1), default=1000, show_default=True,
    help="Messages per request (my-sms packets); an unanswered packet is all unknown.",
)  # fmt: skip
@click.option(
    "--lease", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
    help="Seconds a silent worker is thought alive (heartbeats every third of it).",
)  # fmt: skip
@click.option(
    "--until-done",
    is_flag=True,
    help="Exit once its campaigns have nothing left to send, instead of waiting for more.",
)
@pass_settings
def worker(
    settings: Settings,
    names: tuple[str, ...],
    poll: float,
    rate: float | None,
    max_concurrency: int | None,
    packet_size: int,
    lease: float,
    until_done: bool,
) -> None:
    """Send the running campaigns of --journal until stopped; start as many as you like.

    With a PostgreSQL journal, workers on any machine (and 'aiosms campaign run') share
    each campaign; a worker that dies is taken over once its lease passes. SIGTERM or
    Ctrl-C drains (the packets on the wire settle; exit 0); a second one stops at once
    (exit 5). With --until-done: exit 0 once every campaign is done, 5 if one is paused,
    1 if a --campaign does not exist.
    On stdout at exit: per campaign, what this worker sent.
    """

    async def body() -> ExitCode:
        async with journal_session(settings) as journal, open_client(settings) as client:
            fleet = _Worker(
                settings,
                journal,
                client,
                names=set(names),
                poll=poll,
                until_done=until_done,
                options={
                    "rate": rate,
                    "max_concurrency": max_concurrency,
                    "packet_size": packet_size,
                    "lease": lease,
                },
            )
            code = await fleet.serve()
        rows = [{"campaign": n, "runs": r, "sent": s} for n, (r, s) in sorted(fleet.tally.items())]
        if rows or settings.output != "table":
            emit(rows, settings)
        return code

    run(settings, body)


class _Worker:
    """One worker process's loop: look for campaigns, run each in a task, drain on a signal."""

    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        client: Client,
        *,
        names: set[str],
        poll: float,
        until_done: bool,
        options: dict[str, Any],
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.client = client
        self.names = names
        self.poll = poll
        self.until_done = until_done
        self.options = options
        #: The campaigns being run now, by name.
        self.running: dict[str, Campaign] = {}
        #: Per campaign worked on: (runs, messages sent by this worker).
        self.tally: dict[str, tuple[int, int]] = {}
        self.draining: str | None = None
        #: Set once the worker looks for no more work: a run not started yet never starts.
        self.closing = False
        self.stopped_at_once = False
        self.paused: set[str] = set()
        #: Campaigns named by --campaign that the journal does not have (yet).
        self.missing: set[str] = set()
        self._wake = anyio.Event()
        self._told: set[str] = set()

    async def serve(self) -> ExitCode:
        with self._signals() as signals:
            async with anyio.create_task_group() as outer:
                if signals is not None:
                    outer.start_soon(self._watch, signals, outer.cancel_scope)
                async with anyio.create_task_group() as runs:
                    while self.draining is None:
                        idle = await self._look(runs)
                        if self.until_done and self.missing:
                            break
                        if idle and self.until_done and not self.running:
                            break
                        with anyio.move_on_after(self.poll):
                            await self._wake.wait()
                    # No run starts from here on, and those running stop cleanly: an
                    # interrupt holds for the rest of a Campaign.run, whatever it awaits.
                    self.closing = True
                    self._interrupt()
                outer.cancel_scope.cancel()
        if self.stopped_at_once:
            click.echo("aiosms: worker stopped at once", err=True)
            return ExitCode.INTERRUPTED
        if self.until_done and self.missing:
            return ExitCode.NOTHING_SENT
        if self.draining is not None:
            click.echo(f"aiosms: worker drained ({self.draining})", err=True)
            return ExitCode.OK
        return ExitCode.INTERRUPTED if self.paused else ExitCode.OK

    @contextmanager
    def _signals(self) -> Iterator[Any]:
        if threading.current_thread() is not threading.main_thread():
            # Signals reach the main thread only (a test runner may call us from another).
            yield None
            return
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            yield signals

    async def _watch(self, signals: Any, scope: anyio.CancelScope) -> None:
        async for number in signals:
            received = signal.Signals(number).name
            if self.draining is None:
                click.echo(
                    f"aiosms: interrupted by {received}: finishing the packets on the wire, "
                    f"releasing the rest (again to stop at once)",
                    err=True,
                )
                self.draining = f"interrupted by {received}"
                self._interrupt()
                self._wake.set()
            else:
                click.echo(f"aiosms: interrupted by {received} again", err=True)
                self.stopped_at_once = True
                scope.cancel()
                return

    def _interrupt(self) -> None:
        for found in self.running.values():
            found.interrupt(self.draining or "interrupted")

    async def _look(self, runs: anyio.abc.TaskGroup) -> bool:
        """Start a run for each campaign with work left; True when there is none at all."""
        idle = True
        infos = {info.name: info for info in await self.journal.list_campaigns()}
        self.missing = self.names - infos.keys()
        for name in sorted(self.missing - self._told):
            self._told.add(name)
            # --until-done has nothing to wait for: a typo should not hang a batch job.
            waiting = "" if self.until_done else ": waiting for it"
            click.echo(f"aiosms: no campaign named {name!r}{waiting}", err=True)
        self.paused.clear()
        for info in infos.values():
            if self.names and info.name not in self.names:
                continue
            if info.name in self.running:
                idle = False
                continue
            counts = await self.journal.counts(info.id)
            if not any(counts[state] for state in _OPEN):
                continue
            if info.state != "active":
                self.paused.add(info.name)
                continue
            if not self._can_send(info):
                continue
            idle = False
            self.running[info.name] = Campaign(self.journal, info)
            runs.start_soon(self._run, info)
        if self.missing:
            idle = False
        return idle

    def _can_send(self, info: CampaignInfo) -> bool:
        if self.settings.gateway == "mysms" and not (
            self.settings.sender or info.settings.get("sender")
        ):
            if info.name not in self._told:
                self._told.add(info.name)
                # Without one my-sms refuses every row: better not to try.
                click.echo(
                    f"aiosms: campaign {info.name!r} has no sender name and none was given "
                    "(--sender before 'worker'): skipped",
                    err=True,
                )
            return False
        return True

    async def _run(self, info: CampaignInfo) -> None:
        found = self.running[info.name]
        try:
            if self.closing or self.draining is not None:
                return
            summary = await found.run(self.client, **self.options)
        except SmsError as error:
            click.echo(
                f"aiosms: campaign {info.name}: {type(error).__name__}: {error}; "
                f"trying again in {self.poll:g} s",
                err=True,
            )
            return
        finally:
            del self.running[info.name]
        runs, sent = self.tally.get(info.name, (0, 0))
        self.tally[info.name] = (runs + 1, sent + summary.sent)
        if summary.sent or summary.state not in ("done", "incomplete"):
            shown = ("accepted", "rejected", "unknown", "pending")
            counts = " ".join(f"{s} {summary.counts[s]}" for s in shown)
            reason = f" ({summary.reason})" if summary.reason else ""
            click.echo(
                f"aiosms: campaign {info.name}: sent {summary.sent}, {summary.state}{reason}; "
                f"{counts}",
                err=True,
            )
        if summary.state == "paused":
            self.paused.add(info.name)
