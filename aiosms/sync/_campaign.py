"""A durable campaign driven from blocking code (a cron script, a Celery task).

Every call runs in the event loop of the blocking client the campaign was opened
with, so the journal's connection, the client's pool and the campaign's run share one
loop thread. Nothing here decides anything: it forwards to ``aiosms.campaigns``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Iterator
from typing import Any, cast

from aiosms._models import Message, StatusReport
from aiosms.campaigns import Campaign as AsyncCampaign
from aiosms.campaigns import Journal, Summary
from aiosms.sync._clients import SyncClient

__all__ = ["Campaign"]


class Campaign:
    """Blocking twin of ``aiosms.campaigns.Campaign``, bound to one blocking client.

    >>> from aiosms.campaigns import SqliteJournal
    >>> with aiosms.sync.MySms(username="u", password="p", sender="Shop") as sms:  # doctest: +SKIP
    ...     campaign = aiosms.sync.Campaign.create(sms, SqliteJournal("c.db"), "sale", messages)
    ...     summary = campaign.run(rate=50)
    ...     for report in campaign.track(deadline=600):
    ...         ...

    The journal is used from the client's loop thread; create one journal (and one
    client) per process, as after a ``fork()`` neither is the parent's to use.
    """

    def __init__(self, client: SyncClient[Any], campaign: AsyncCampaign) -> None:
        self.client = client
        self._campaign = campaign

    @classmethod
    def create(
        cls,
        client: SyncClient[Any],
        journal: Journal,
        name: str,
        messages: Iterable[Message] = (),
        **options: Any,
    ) -> Campaign:
        """Create (or open) the campaign and import ``messages``: ``Campaign.create``'s
        rules and options; idempotent on each message's key."""
        campaign = client._run(lambda _: AsyncCampaign.create(journal, name, messages, **options))
        return cls(client, campaign)

    @classmethod
    def open(cls, client: SyncClient[Any], journal: Journal, name: str) -> Campaign:
        """Open an existing campaign (``ValidationError`` naming it if there is none)."""
        return cls(client, client._run(lambda _: AsyncCampaign.open(journal, name)))

    @property
    def name(self) -> str:
        """The campaign's name."""
        return self._campaign.name

    def run(self, **options: Any) -> Summary:
        """Send what is pending through this campaign's client; ``Campaign.run``'s options."""
        return self.client._run(lambda client: self._campaign.run(client, **options))

    def track(self, **options: Any) -> Iterator[StatusReport]:
        """Poll and store delivery states; yield each change (``Campaign.track``'s options)."""

        def reports(client: Any, _: object) -> AsyncGenerator[StatusReport, None]:
            # Campaign.track is an async generator; its annotation says only iterator.
            return cast(
                "AsyncGenerator[StatusReport, None]", self._campaign.track(client, **options)
            )

        return self.client._iterate(reports)

    def counts(self) -> dict[str, int]:
        """Rows per state, every state present."""
        return self.client._run(lambda _: self._campaign.counts())

    def summary(self) -> Summary:
        """Counts, parts and cost so far."""
        return self.client._run(lambda _: self._campaign.summary())

    def pause(self, reason: str = "paused by the user") -> None:
        """Stop claiming: a running ``run()`` sends nothing more and returns paused."""
        self.client._run(lambda _: self._campaign.pause(reason))

    def resume(self, **options: Any) -> int:
        """Let the campaign run again (``Campaign.resume``'s options)."""
        return self.client._run(lambda _: self._campaign.resume(**options))
