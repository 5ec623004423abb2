"""The shared journal: PostgreSQL, one campaign worked by processes on many machines.

``PostgresJournal`` is a thin async face: each method runs one function of the
``_pg`` package, in one transaction on the journal's session, in a worker thread
(``anyio.to_thread``). psycopg 3's async API is asyncio-only, and trio users run
campaigns too. The SQL and the rules it keeps (fencing, heartbeats, the reaper) live
in those functions; the session (``_pg._session``) decides when a call runs again.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
import psycopg
from psycopg.conninfo import conninfo_to_dict

from aiosms._errors import ValidationError
from aiosms._models import Message
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import CampaignInfo, Claim, ImportResult, NewRow, Outcome, Row
from aiosms.campaigns._pg import _campaigns, _intake, _reading, _sending, _stoplist, _workers
from aiosms.campaigns._pg._schema import SCHEMA_VERSION, schema_version
from aiosms.campaigns._pg._session import Session, masked_conninfo
from aiosms.campaigns._pg._sql import Cursor

__all__ = ["SCHEMA_VERSION", "PostgresJournal", "masked_conninfo"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class PostgresJournal(Journal):
    """The shared journal: every worker of a campaign, on any machine, on one PostgreSQL.

    >>> journal = PostgresJournal("postgresql://sms@db.internal/shop")  # doctest: +SKIP

    ``conninfo`` is anything libpq takes (a ``postgresql://`` URI, ``key=value``
    pairs, ``service=…`` from a service file; ``PG*`` environment variables and the
    ``PGPASSFILE`` fill in the rest). A password written into it works but is
    warned about: it ends up in shell histories and process lists. The tables
    (``aiosms_*``) are created, or upgraded, on first use, and may live in the
    application's own database. A worker that stops beating is thought alive for
    the ``lease`` its run was given (``Campaign.run(lease=…)``). ``repr()`` and error
    messages show the connection string with ``password=***``.

    ``connect_timeout``: seconds to wait for the server when connecting (rounded up
    to whole seconds, as libpq counts them).
    """

    def __init__(self, conninfo: str = "", *, connect_timeout: float = 10.0) -> None:
        session = Session(conninfo, connect_timeout=connect_timeout)
        if "password" in conninfo_to_dict(conninfo):
            warnings.warn(
                "the PostgreSQL connection string holds a password: prefer a password "
                "file (PGPASSFILE, ~/.pgpass), a service file or PGPASSWORD",
                UserWarning,
                stacklevel=2,
            )
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or not connect_timeout > 0
        ):
            raise ValidationError("connect_timeout", "must be a positive number of seconds")
        self._session = session

    def __repr__(self) -> str:
        return f"PostgresJournal({self._session.masked!r})"

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for the server when connecting."""
        return self._session.connect_timeout

    async def _call(
        self, statement: Callable[Concatenate[Cursor, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        """``statement(cursor, *args, **kw)`` in one transaction, in a worker thread.

        Not abandoned on cancellation: a commit that happened must be known to the
        caller (the cancellation takes effect once it returns).
        """
        return await anyio.to_thread.run_sync(
            self._session.run, lambda db: statement(db, *args, **kw)
        )

    def close(self) -> None:
        """Close the connection (blocking; harmless twice)."""
        self._session.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    async def schema_version(self) -> int:
        """The schema version recorded in the database's ``aiosms_meta`` table."""
        found = await self._call(schema_version)
        if found is None:
            raise RuntimeError("the journal has no schema version recorded")
        return found

    @staticmethod
    def enqueue(
        connection: psycopg.Connection[Any], campaign: str, messages: Iterable[Message]
    ) -> ImportResult:
        """Add ``messages`` to the campaign ``campaign`` in the caller's transaction.

        >>> with psycopg.connect(dsn) as conn:  # doctest: +SKIP
        ...     conn.execute("INSERT INTO orders …")
        ...     PostgresJournal.enqueue(conn, "confirmations", [Message(..., key=f"order-{n}")])
        ...     # the order and its SMS commit together, or neither does

        Blocking (the caller's own psycopg connection; run it where the rest of the
        transaction runs). Nothing is committed here: the rows exist once the caller
        commits and are gone if it rolls back (with an autocommit connection, wrap the
        call in ``connection.transaction()``). Every message needs a ``key``, unique in
        the campaign: enqueueing the same key again adds nothing. The campaign must
        exist (``Campaign.create``); its sender, ``max_parts`` and dedupe settings and
        the stop list apply as for ``Campaign.add``.
        """
        with connection.cursor() as db:
            return _intake.enqueue(db, campaign, messages)

    # -- campaigns ---------------------------------------------------------------------

    async def create_campaign(self, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
        return await self._call(_campaigns.create_campaign, name, settings)

    async def get_campaign(self, name: str) -> CampaignInfo | None:
        return await self._call(_campaigns.get_campaign, name)

    async def list_campaigns(self) -> list[CampaignInfo]:
        return await self._call(_campaigns.list_campaigns)

    async def set_campaign_state(
        self,
        campaign: int,
        state: str,
        reason: str | None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        await self._call(_campaigns.set_campaign_state, campaign, state, reason, settings)

    async def purge_campaigns(self, before: float) -> list[str]:
        return await self._call(_campaigns.purge_campaigns, before)

    async def settled_since(self, campaign: int, since: float) -> int:
        return await self._call(_campaigns.settled_since, campaign, since)

    # -- rows --------------------------------------------------------------------------

    async def import_rows(
        self, campaign: int, rows: Sequence[NewRow], *, dedupe: bool
    ) -> ImportResult:
        return await self._call(_intake.import_rows, campaign, rows, dedupe=dedupe)

    async def recover(self, campaign: int) -> tuple[int, int]:
        """At start-up: rows of workers that are not alive (no heartbeat, or a stale one).

        Unlike SQLite's one-machine rule, the ``sending`` rows of workers still
        beating elsewhere are left alone: they are being sent right now.
        """
        return await self._call(_workers.reap, campaign, orphans=True)

    async def claim(
        self, campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        return await self._call(_sending.claim, campaign, owner, limit, lease, budget)

    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        return await self._call(_sending.begin_send, campaign, owner, rows, attempt)

    async def finish(
        self,
        campaign: int,
        attempt: str,
        outcomes: Sequence[Outcome],
        *,
        stop_list: Iterable[tuple[str, str]] = (),
        pause: str | None = None,
    ) -> int:
        entries = list(stop_list)
        return await self._call(_sending.finish, campaign, attempt, outcomes, entries, pause)

    async def release(self, campaign: int, owner: str) -> int:
        return await self._call(_workers.release, campaign, owner)

    async def heartbeat(self, campaign: int, owner: str, lease: float) -> CampaignInfo:
        # Well within the lease, so a stalled worker's locks go before its lease ends
        # and the others can reap it.
        self._session.limit_stall(lease / 2)
        host, pid = socket.gethostname(), os.getpid()
        return await self._call(_workers.heartbeat, campaign, owner, lease, host, pid)

    async def live_workers(self, campaign: int) -> int:
        """Workers of the campaign whose heartbeat is fresh (at least 1)."""
        return await self._call(_workers.live_workers, campaign)

    async def requeue(self, campaign: int, state: str, *, reason: str | None = None) -> int:
        return await self._call(_sending.requeue, campaign, state, reason)

    # -- reading -----------------------------------------------------------------------

    async def counts(self, campaign: int) -> dict[str, int]:
        return await self._call(_reading.counts, campaign)

    async def totals(self, campaign: int) -> tuple[int, str | None]:
        return await self._call(_reading.totals, campaign)

    async def rows(
        self, campaign: int, *, state: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Row]:
        return await self._call(_reading.rows, campaign, state, after, limit)

    async def tracking_page(
        self, campaign: int, *, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        return await self._call(_reading.tracking_page, campaign, after, limit)

    async def store_delivery(
        self, campaign: int, updates: Sequence[tuple[int, str, int | None]]
    ) -> None:
        await self._call(_reading.store_delivery, campaign, updates)

    # -- stop list ---------------------------------------------------------------------

    async def stoplist_add(self, entries: Iterable[tuple[str, str]]) -> int:
        return await self._call(_stoplist.add_to_stoplist, list(entries))

    async def stoplist_remove(self, phones: Iterable[str]) -> int:
        return await self._call(_stoplist.remove_from_stoplist, list(phones))

    async def stoplist(self) -> list[tuple[str, str]]:
        return await self._call(_stoplist.stoplist)
