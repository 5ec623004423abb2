"""The embedded journal: one SQLite file, one connection, one machine.

The file holds personal data (numbers, texts), so it is created with mode 0600
before SQLite opens it; SQLite gives its WAL and shared-memory files the same mode.
WAL with ``synchronous=FULL`` makes every commit durable before it returns, which
is what "intent before effect" rests on. All access goes through one connection in
a worker thread (``anyio.to_thread``), one call at a time, so asyncio and trio
behave alike and the event loop never waits on the disk.

``SqliteJournal`` is the asynchronous face; the SQL is in ``_sqlite_schema`` (the file
and its versions), ``_sqlite_sending`` (claims, packets, outcomes) and ``_sqlite_rows``
(import and reading).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from aiosms.campaigns import _sqlite_rows as rows_sql
from aiosms.campaigns import _sqlite_sending as sending_sql
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import CampaignInfo, Claim, ImportResult, NewRow, Outcome, Row
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info
from aiosms.campaigns._sqlite_schema import (
    SCHEMA_VERSION,
    Transaction,
    campaign_by_name,
    configure,
    create_private_file,
    in_snapshot,
    prepare_schema,
    set_campaign_state,
    with_outcomes,
)

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]

_T = TypeVar("_T")


class SqliteJournal(Journal):
    """The embedded journal: one SQLite file on one machine.

    >>> journal = SqliteJournal("campaigns.db")  # doctest: +SKIP

    The file (mode 0600) is opened on first use, in a worker thread; ``aclose()`` or
    ``close()`` closes it. One connection serves every call, one call at a time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    # -- plumbing ----------------------------------------------------------------------

    async def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(connection, *args)`` in a worker thread, one call at a time.

        Not abandoned on cancellation: a commit that happened must be known to the
        caller (the cancellation takes effect once it returns).
        """
        return await anyio.to_thread.run_sync(self._run, lambda db: function(db, *args))

    async def _read(self, function: Callable[..., _T], campaign: int, *args: Any) -> _T:
        """``_call`` for a reader of outcomes: it sees every outcome as a row."""

        def read(db: sqlite3.Connection) -> _T:
            return with_outcomes(db, campaign, lambda: function(db, campaign, *args))

        return await self._call(read)

    def _run(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            if self._closed:
                raise RuntimeError("the journal is closed")
            connection = self._connection or self._open()
            return function(connection)

    def _open(self) -> sqlite3.Connection:
        create_private_file(self.path)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            configure(connection)
            # One transaction: two processes opening a new file at once must not both
            # half-create it, and a migration is all or nothing.
            with Transaction(connection):
                prepare_schema(connection, self.path)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def close(self) -> None:
        """Close the connection (blocking; harmless twice)."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    async def schema_version(self) -> int:
        """The schema version recorded in the file's ``aiosms_meta`` table."""
        return await self._call(_schema_version)

    # -- campaigns ---------------------------------------------------------------------

    async def create_campaign(self, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
        return await self._call(_create_campaign, name, dict(settings))

    async def get_campaign(self, name: str) -> CampaignInfo | None:
        return await self._call(campaign_by_name, name)

    async def list_campaigns(self) -> list[CampaignInfo]:
        return await self._call(_list_campaigns)

    async def set_campaign_state(
        self,
        campaign: int,
        state: str,
        reason: str | None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        await self._call(
            _set_campaign, campaign, state, reason, None if settings is None else dict(settings)
        )

    async def purge_campaigns(self, before: float) -> list[str]:
        return await self._call(rows_sql.purge_campaigns, before)

    async def settled_since(self, campaign: int, since: float) -> int:
        return await self._call(
            lambda db: in_snapshot(db, lambda: rows_sql.settled_since(db, campaign, since))
        )

    # -- rows --------------------------------------------------------------------------

    async def import_rows(
        self, campaign: int, rows: Sequence[NewRow], *, dedupe: bool
    ) -> ImportResult:
        return await self._call(rows_sql.import_rows, campaign, rows, dedupe)

    async def recover(self, campaign: int) -> tuple[int, int]:
        return await self._call(sending_sql.recover, campaign)

    async def claim(
        self, campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        return await self._call(sending_sql.claim, campaign, owner, limit, lease, budget)

    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        return await self._call(sending_sql.begin_send, campaign, owner, rows, attempt)

    async def finish(
        self,
        campaign: int,
        attempt: str,
        outcomes: Sequence[Outcome],
        *,
        stop_list: Iterable[tuple[str, str]] = (),
        pause: str | None = None,
    ) -> int:
        return await self._call(
            sending_sql.finish, campaign, attempt, outcomes, list(stop_list), pause
        )

    async def release(self, campaign: int, owner: str) -> int:
        return await self._call(sending_sql.release, campaign, owner)

    async def heartbeat(self, campaign: int, owner: str, lease: float) -> CampaignInfo:
        return await self._call(sending_sql.heartbeat, campaign, owner, lease)

    async def requeue(self, campaign: int, state: str, *, reason: str | None = None) -> int:
        return await self._call(sending_sql.requeue, campaign, state, reason)

    # -- reading -----------------------------------------------------------------------

    async def counts(self, campaign: int) -> dict[str, int]:
        return await self._call(rows_sql.counts, campaign)

    async def totals(self, campaign: int) -> tuple[int, str | None]:
        return await self._call(lambda db: in_snapshot(db, lambda: rows_sql.totals(db, campaign)))

    async def rows(
        self, campaign: int, *, state: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Row]:
        return await self._read(rows_sql.rows, campaign, state, after, limit)

    async def tracking_page(
        self, campaign: int, *, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        return await self._read(rows_sql.tracking_page, campaign, after, limit)

    async def store_delivery(
        self, campaign: int, updates: Sequence[tuple[int, str, int | None]]
    ) -> None:
        await self._call(rows_sql.store_delivery, campaign, updates)

    # -- stop list ---------------------------------------------------------------------

    async def stoplist_add(self, entries: Iterable[tuple[str, str]]) -> int:
        return await self._call(_stoplist_add, list(entries))

    async def stoplist_remove(self, phones: Iterable[str]) -> int:
        return await self._call(_stoplist_remove, list(phones))

    async def stoplist(self) -> list[tuple[str, str]]:
        return await self._call(_stoplist)


def _schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'")
    return int(row.fetchone()[0])


def _create_campaign(db: sqlite3.Connection, name: str, settings: dict[str, Any]) -> CampaignInfo:
    now = time.time()
    with Transaction(db):
        db.execute(
            "INSERT OR IGNORE INTO aiosms_campaigns (name, settings, created_at, updated_at) "
            "VALUES (?, ?, ?, ?)",
            (name, json.dumps(settings), now, now),
        )
        info = campaign_by_name(db, name)
    assert info is not None
    return info


def _list_campaigns(db: sqlite3.Connection) -> list[CampaignInfo]:
    found = db.execute(f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns ORDER BY id")
    return [campaign_info(row) for row in found]


def _set_campaign(
    db: sqlite3.Connection,
    campaign: int,
    state: str,
    reason: str | None,
    settings: dict[str, Any] | None,
) -> None:
    with Transaction(db):
        set_campaign_state(db, campaign, state, reason)
        if settings is not None:
            db.execute(
                "UPDATE aiosms_campaigns SET settings = ? WHERE id = ?",
                (json.dumps(settings), campaign),
            )


def _stoplist_add(db: sqlite3.Connection, entries: list[tuple[str, str]]) -> int:
    with Transaction(db):
        return sending_sql.stoplist_add(db, entries, time.time())


def _stoplist_remove(db: sqlite3.Connection, phones: list[str]) -> int:
    with Transaction(db):
        before = db.total_changes
        db.executemany("DELETE FROM aiosms_stoplist WHERE phone = ?", [(p,) for p in phones])
        return db.total_changes - before


def _stoplist(db: sqlite3.Connection) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = db.execute(
        "SELECT phone, reason FROM aiosms_stoplist ORDER BY phone"
    ).fetchall()
    return found
