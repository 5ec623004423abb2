"""``Campaign.run``'s loop: passes one after another until the campaign stops or is done.

Before each pass it reads the campaign's state and window from the journal; after
it, it decides whether to go on (the window opened again, other workers' rows came
back) or to answer with a ``Summary``. ``interrupt()`` reaches the running passes of
this one ``Campaign`` object. Sending itself is ``Run``'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import attrs

from aiosms.campaigns._models import Summary
from aiosms.campaigns._run import Run, now
from aiosms.campaigns._settings import check_run_options, load_info, window_of

if TYPE_CHECKING:
    from aiosms._client import BaseClient
    from aiosms.campaigns._campaign import Campaign

__all__ = ["RunOptions", "Runner"]

logger = logging.getLogger("aiosms.campaigns")

#: Seconds between looks at rows other workers hold (``run(wait_for_others=True)``).
_HELD_POLL = 1.0


@attrs.frozen
class RunOptions:
    """The options of one ``Campaign.run`` call, checked when built."""

    max_concurrency: int | None
    rate: float | None
    packet_size: int
    claim_packets: int
    lease: float
    linger: float
    wait_for_window: bool
    wait_for_others: bool

    def __attrs_post_init__(self) -> None:
        check_run_options(
            packet_size=self.packet_size,
            claim_packets=self.claim_packets,
            max_concurrency=self.max_concurrency,
            lease=self.lease,
            rate=self.rate,
        )


class Runner:
    """The passes of ``Campaign.run`` for one ``Campaign`` object, and their interrupt."""

    def __init__(self, campaign: Campaign) -> None:
        self._campaign = campaign
        self._runs: list[Run] = []
        self._interrupted: str | None = None

    def interrupt(self, reason: str) -> None:
        """Stop the running passes soon, cleanly; the next ``run()`` starts afresh.

        It holds for the rest of a ``run()`` in progress, whichever await it comes at:
        a pass about to start checks it first, and a pass started is marked stopped.
        """
        self._interrupted = reason
        for run in self._runs:
            if run.stopped is None:
                run.stopped = ("interrupted", reason)

    async def run(self, client: BaseClient, options: RunOptions) -> Summary:
        """Passes until one ends for good; the campaign's ``Summary`` then."""
        campaign = self._campaign
        sent = 0
        self._interrupted = None
        while True:
            if self._interrupted is not None:
                return await campaign.summary(sent=sent, stopped=("interrupted", self._interrupted))
            info = await load_info(campaign.journal, campaign.name)
            if info.state == "paused":
                return await campaign.summary(sent=sent)
            window = window_of(info.settings)
            if window is not None and not window.is_open(now()):
                opening = window.next_opening(now())
                if not options.wait_for_window:
                    return await campaign.summary(
                        sent=sent, stopped=("window", f"the send window opens at {opening}")
                    )
                logger.info("campaign %r waits for its send window (%s)", campaign.name, opening)
                await anyio.sleep(max(1.0, (opening - now()).total_seconds()))
                continue
            if self._interrupted is not None:
                # Interrupted while reading: no await from here to the pass being listed.
                continue
            run = Run(
                campaign.journal, campaign.id, campaign.name,
                window=window, budget=info.settings.get("budget"), lease=float(options.lease),
                claim=options.packet_size * options.claim_packets, rate=options.rate,
            )  # fmt: skip
            await self._one_pass(run, client, options)
            sent += run.sent
            if run.stopped is not None and run.stopped[0] == "window" and options.wait_for_window:
                continue
            if run.stopped is None and options.wait_for_others and await self._held_elsewhere():
                await anyio.sleep(_HELD_POLL)
                continue
            return await campaign.summary(
                sent=sent,
                stopped=run.stopped if run.stopped and run.stopped[0] != "paused" else None,
            )

    async def _one_pass(self, run: Run, client: BaseClient, options: RunOptions) -> None:
        self._runs.append(run)
        try:
            await run.go(
                client,
                max_concurrency=options.max_concurrency,
                packet_size=options.packet_size,
                linger=options.linger,
            )
        finally:
            self._runs.remove(run)

    async def _held_elsewhere(self) -> bool:
        """Nothing pending, but rows claimed or sending (by other workers, or leases
        that have yet to lapse)."""
        counts = await self._campaign.journal.counts(self._campaign.id)
        return not counts["pending"] and bool(counts["claimed"] + counts["sending"])
