"""The embedded journal: one SQLite file, one connection, one machine.

The file holds personal data (numbers, texts), so it is created with mode 0600
before SQLite opens it; SQLite gives its WAL and shared-memory files the same mode.
WAL with ``synchronous=FULL`` makes every commit durable before it returns, which
is what "intent before effect" rests on. All access goes through one connection in
a worker thread (``anyio.to_thread``), one call at a time, so asyncio and trio
behave alike and the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import (
    ALL_STATES,
    CampaignInfo,
    Claim,
    ClaimedRow,
    ImportResult,
    NewRow,
    Outcome,
    Row,
)
from aiosms.campaigns._rows import read_row

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]

logger = logging.getLogger("aiosms.campaigns")

#: 1: one ``(campaign, state)`` index. 2: partial indexes of pending and claimed rows
#: and a table of counts per state instead (see ``_INDEXES``).
SCHEMA_VERSION = 2
#: Ids per ``IN (…)`` list: under SQLite's oldest limit on bound parameters (999).
_CHUNK = 500
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS aiosms_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aiosms_campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'active',
    reason TEXT,
    settings TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aiosms_messages (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL REFERENCES aiosms_campaigns(id),
    key TEXT NOT NULL,
    phone TEXT NOT NULL,
    text TEXT NOT NULL,
    sender TEXT,
    at TEXT,
    ttl INTEGER,
    parts INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    attempt TEXT,
    owner TEXT,
    epoch INTEGER,
    lease_until REAL,
    message_id TEXT,
    error_class TEXT,
    error_code INTEGER,
    error_text TEXT,
    cost TEXT,
    delivery TEXT,
    delivery_code INTEGER,
    created_at REAL NOT NULL,
    claimed_at REAL,
    sent_at REAL,
    settled_at REAL,
    delivery_at REAL,
    UNIQUE (campaign, key)
);
CREATE INDEX IF NOT EXISTS aiosms_messages_phone ON aiosms_messages (campaign, phone);
CREATE TABLE IF NOT EXISTS aiosms_counts (
    campaign INTEGER NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (campaign, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aiosms_stoplist (
    phone TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aiosms_workers (
    owner TEXT PRIMARY KEY,
    campaign INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aiosms_events (
    id INTEGER PRIMARY KEY,
    campaign INTEGER,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
"""

# Every state change moved a row between two entries of one (campaign, state) index,
# three times per message (claimed, sending, settled): most of the journal's cost.
# Only the hot lookups are indexed now, each by a partial index a row enters or leaves
# once: `pending` (claims search it) and `claimed` (leases, release). Counts per state
# live in `aiosms_counts`, kept by every statement that changes a row's state (see
# `_tally`); queries for other states walk the table in id order (`+campaign` keeps
# SQLite from going through another index and sorting). Queries name the state as a
# literal: a partial index applies only where SQLite can prove the query is within it.
_INDEXES = """
CREATE INDEX IF NOT EXISTS aiosms_messages_pending ON aiosms_messages (campaign)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS aiosms_messages_claimed ON aiosms_messages (campaign, lease_until)
    WHERE state = 'claimed';
"""

_ROW_COLUMNS = (
    "id, key, phone, text, sender, parts, state, reason, attempt, owner, epoch, message_id, "
    "error_class, error_code, error_text, cost, delivery, created_at, sent_at, settled_at, "
    "delivery_at"
)
_FINAL_DELIVERY = ("delivered", "undelivered", "rejected")


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _stamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def create_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if it is missing; warn if an existing one is wider."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "the journal %s holds personal data but is readable by others (mode %o)",
                path,
                mode,
            )
        return
    os.close(fd)


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

    async def _call(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``function`` on the connection in a worker thread, one call at a time.

        Not abandoned on cancellation: a commit that happened must be known to the
        caller (the cancellation takes effect once it returns).
        """
        return await anyio.to_thread.run_sync(self._run, function)

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
            _configure(connection)
            # One transaction: two processes opening a new file at once must not both
            # half-create it, and a migration is all or nothing.
            with _transaction(connection):
                _prepare_schema(connection, self.path)
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

        def read(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'")
            return int(row.fetchone()[0])

        return await self._call(read)

    # -- campaigns ---------------------------------------------------------------------

    async def create_campaign(self, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
        def create(db: sqlite3.Connection) -> CampaignInfo:
            now = time.time()
            with _transaction(db):
                db.execute(
                    "INSERT OR IGNORE INTO aiosms_campaigns "
                    "(name, settings, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, json.dumps(dict(settings)), now, now),
                )
                info = _campaign(db, name)
            assert info is not None
            return info

        return await self._call(create)

    async def get_campaign(self, name: str) -> CampaignInfo | None:
        return await self._call(lambda db: _campaign(db, name))

    async def list_campaigns(self) -> list[CampaignInfo]:
        def read(db: sqlite3.Connection) -> list[CampaignInfo]:
            rows = db.execute(
                "SELECT id, name, state, reason, settings FROM aiosms_campaigns ORDER BY id"
            ).fetchall()
            return [CampaignInfo(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

        return await self._call(read)

    async def set_campaign_state(
        self,
        campaign: int,
        state: str,
        reason: str | None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        def update(db: sqlite3.Connection) -> None:
            with _transaction(db):
                _set_state(db, campaign, state, reason)
                if settings is not None:
                    db.execute(
                        "UPDATE aiosms_campaigns SET settings = ? WHERE id = ?",
                        (json.dumps(dict(settings)), campaign),
                    )

        await self._call(update)

    async def purge_campaigns(self, before: float) -> list[str]:
        def purge(db: sqlite3.Connection) -> list[str]:
            with _transaction(db):
                found = db.execute(
                    # Last changed: the campaign's own record or any of its rows.
                    "SELECT id, name FROM aiosms_campaigns c WHERE updated_at < ? "
                    "AND COALESCE((SELECT MAX(MAX(created_at, COALESCE(settled_at, 0), "
                    "COALESCE(delivery_at, 0))) FROM aiosms_messages m "
                    "WHERE m.campaign = c.id), 0) < ? "
                    "AND NOT EXISTS (SELECT 1 FROM aiosms_messages m WHERE m.campaign = c.id "
                    "AND m.state IN ('claimed', 'sending')) ORDER BY id",
                    (before, before),
                ).fetchall()
                for campaign, name in found:
                    for table in (
                        "aiosms_messages",
                        "aiosms_counts",
                        "aiosms_events",
                        "aiosms_workers",
                    ):
                        db.execute(f"DELETE FROM {table} WHERE campaign = ?", (campaign,))
                    db.execute("DELETE FROM aiosms_campaigns WHERE id = ?", (campaign,))
                    _event(db, None, "purge", name)
            return [name for _, name in found]

        return await self._call(purge)

    async def settled_since(self, campaign: int, since: float) -> int:
        def count(db: sqlite3.Connection) -> int:
            (found,) = db.execute(
                "SELECT COUNT(*) FROM aiosms_messages WHERE +campaign = ? AND settled_at >= ? "
                "AND state IN ('accepted', 'rejected', 'unknown')",
                (campaign, since),
            ).fetchone()
            return int(found)

        return await self._call(count)

    # -- rows --------------------------------------------------------------------------

    async def import_rows(
        self, campaign: int, rows: Sequence[NewRow], *, dedupe: bool
    ) -> ImportResult:
        def insert(db: sqlite3.Connection) -> ImportResult:
            now = time.time()
            with _transaction(db):
                phones = sorted({r.phone for r in rows if r.state == "pending"})
                stopped = _stop_listed(db, phones)
                taken: set[str] = set()
                if dedupe:
                    for chunk in _chunks(phones):
                        taken.update(
                            p
                            for (p,) in db.execute(
                                "SELECT phone FROM aiosms_messages WHERE campaign = ? "
                                f"AND phone IN ({_marks(len(chunk))})",
                                (campaign, *chunk),
                            )
                        )
                # Rows whose key is already there are left alone (INSERT OR IGNORE):
                # importing the same rows again adds nothing and judges nothing.
                known = _known_keys(db, campaign, [r.key for r in rows])
                values = []
                skipped = 0
                for row in rows:
                    if row.key in known:
                        continue
                    known.add(row.key)
                    state, reason = row.state, row.reason
                    if state == "pending":
                        if row.phone in stopped:
                            state, reason = "skipped", "stop-listed"
                        elif dedupe and row.phone in taken:
                            state, reason = "skipped", "duplicate number"
                        elif dedupe:
                            taken.add(row.phone)
                    skipped += state == "skipped"
                    values.append(
                        (
                            campaign,
                            row.key,
                            row.phone,
                            row.text,
                            row.sender,
                            row.at,
                            row.ttl,
                            row.parts,
                            state,
                            reason,
                            now,
                        )
                    )
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO aiosms_messages (campaign, key, phone, text, sender, "
                    "at, ttl, parts, state, reason, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                added = db.total_changes - before
                if added == len(values):
                    _tally(db, campaign, Counter(v[8] for v in values))
                else:
                    _recount(db, campaign)
            return ImportResult(added, skipped)

        return await self._call(insert)

    async def recover(self, campaign: int) -> tuple[int, int]:
        def recover(db: sqlite3.Connection) -> tuple[int, int]:
            now = time.time()
            with _transaction(db):
                lost = db.execute(
                    "UPDATE aiosms_messages SET state = 'unknown', reason = 'worker lost', "
                    "error_class = 'WorkerLost', error_text = 'the worker stopped while "
                    "the message was being sent: it may have gone out', settled_at = ? "
                    # In no index: one pass over the table, once per run.
                    "WHERE +campaign = ? AND state = 'sending'",
                    (now, campaign),
                ).rowcount
                released = db.execute(
                    "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
                    "lease_until = NULL WHERE campaign = ? AND state = 'claimed'",
                    (campaign,),
                ).rowcount
                _tally(db, campaign, {"sending": -lost, "unknown": lost})
                _tally(db, campaign, {"claimed": -released, "pending": released})
                if lost or released:
                    _event(
                        db,
                        campaign,
                        "recover",
                        f"{lost} sending → unknown, {released} claimed → pending",
                    )
            if lost:
                logger.warning(
                    "campaign %d: %d message(s) were being sent when their worker stopped: "
                    "marked unknown, never resent",
                    campaign,
                    lost,
                )
            return lost, released

        return await self._call(recover)

    async def claim(
        self, campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        def claim(db: sqlite3.Connection) -> Claim:
            now = time.time()
            with _transaction(db):
                # Rows whose worker let the lease lapse are provably unsent: back in line.
                expired = db.execute(
                    "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
                    "lease_until = NULL WHERE campaign = ? AND state = 'claimed' "
                    "AND lease_until < ?",
                    (campaign, now),
                ).rowcount
                _tally(db, campaign, {"claimed": -expired, "pending": expired})
                # The stop list is looked up in the same pass (one probe of its key
                # per row): a number added since import is caught here.
                candidates = db.execute(
                    "SELECT m.id, m.phone, m.text, m.sender, m.at, m.ttl, m.parts, "
                    "s.phone IS NOT NULL FROM aiosms_messages AS m "
                    "LEFT JOIN aiosms_stoplist AS s ON s.phone = m.phone "
                    "WHERE m.campaign = ? AND m.state = 'pending' ORDER BY m.id LIMIT ?",
                    (campaign, limit),
                ).fetchall()
                if not candidates:
                    return Claim(0, [])
                stopped = [(now, c[0]) for c in candidates if c[7]]
                if stopped:
                    db.executemany(
                        "UPDATE aiosms_messages SET state = 'skipped', reason = 'stop-listed', "
                        "settled_at = ? WHERE id = ?",
                        stopped,
                    )
                    _tally(db, campaign, {"pending": -len(stopped), "skipped": len(stopped)})
                    candidates = [c for c in candidates if not c[7]]
                exhausted = False
                if budget is not None:
                    (spent,) = db.execute(
                        "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages WHERE "
                        "+campaign = ? AND state IN ('claimed', 'sending', 'accepted', 'unknown')",
                        (campaign,),
                    ).fetchone()
                    room = budget - spent
                    fitting = []
                    for candidate in candidates:
                        if candidate[6] > room:
                            exhausted = True
                            break
                        room -= candidate[6]
                        fitting.append(candidate)
                    candidates = fitting
                if not candidates:
                    return Claim(0, [], exhausted)
                db.execute(
                    "UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = ?", (campaign,)
                )
                (epoch,) = db.execute(
                    "SELECT epoch FROM aiosms_campaigns WHERE id = ?", (campaign,)
                ).fetchone()
                # The candidates are the first pending rows in id order (stop-listed
                # ones are skipped by now, the budget cuts the tail) and the write lock
                # is held: the pending rows of this id range are exactly them.
                claimed = db.execute(
                    "UPDATE aiosms_messages SET state = 'claimed', owner = ?, epoch = ?, "
                    "lease_until = ?, claimed_at = ? WHERE campaign = ? AND state = 'pending' "
                    "AND id BETWEEN ? AND ?",
                    (owner, epoch, now + lease, now, campaign, candidates[0][0], candidates[-1][0]),
                ).rowcount
                if claimed != len(candidates):
                    raise RuntimeError(f"claimed {claimed} rows, expected {len(candidates)}")
                _tally(db, campaign, {"pending": -claimed, "claimed": claimed})
            return Claim(epoch, [ClaimedRow(*c[:6]) for c in candidates], exhausted)

        return await self._call(claim)

    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        def begin(db: sqlite3.Connection) -> set[int]:
            now = time.time()
            by_epoch: dict[int, list[int]] = {}
            for row_id, epoch in rows:
                by_epoch.setdefault(epoch, []).append(row_id)
            changed: set[int] = set()
            sending = 0
            fenced = (
                "UPDATE aiosms_messages SET state = 'sending', attempt = ?, sent_at = ? "
                # `+campaign`: find the rows by id, not by a walk of the claimed index.
                "WHERE +campaign = ? AND state = 'claimed' AND owner = ? AND epoch = ? "
                "AND lease_until >= ? AND "
            )
            with _transaction(db):
                for epoch, ids in by_epoch.items():
                    ids.sort()
                    head = (attempt, now, campaign, owner, epoch, now)
                    if ids[-1] - ids[0] + 1 == len(ids) == len(set(ids)):
                        # A packet of consecutive rows (the usual case): a range, not a list.
                        count = db.execute(
                            fenced + "id BETWEEN ? AND ?", (*head, ids[0], ids[-1])
                        ).rowcount
                    else:
                        count = 0
                        for chunk in _chunks(ids):
                            count += db.execute(
                                fenced + f"id IN ({_marks(len(chunk))})", (*head, *chunk)
                            ).rowcount
                    sending += count
                    if count == len(ids):
                        changed.update(ids)
                        continue
                    for chunk in _chunks(ids):
                        changed.update(
                            i
                            for (i,) in db.execute(
                                "SELECT id FROM aiosms_messages WHERE attempt = ? "
                                f"AND id IN ({_marks(len(chunk))})",
                                (attempt, *chunk),
                            )
                        )
                _tally(db, campaign, {"claimed": -sending, "sending": sending})
            return changed

        return await self._call(begin)

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

        def finish(db: sqlite3.Connection) -> int:
            now = time.time()
            accepted: list[tuple[Any, ...]] = []
            others: dict[str, list[tuple[Any, ...]]] = {}
            for o in outcomes:
                if o.state == "accepted":
                    # Accepted rows, the bulk, bind only what they carry.
                    accepted.append((o.message_id, o.parts, o.cost, o.delivery, now, o.id, attempt))
                else:
                    others.setdefault(o.state, []).append(
                        (
                            o.state, o.message_id, o.parts, o.cost, o.error_class, o.error_code,
                            o.error_text, o.delivery, o.reason, now, o.id, attempt,
                        )
                    )  # fmt: skip
            settled = 0
            with _transaction(db):
                if accepted:
                    settled += _settle(db, campaign, _ACCEPT, "accepted", accepted)
                for state, values in others.items():
                    settled += _settle(db, campaign, _SETTLE, state, values)
                if entries:
                    _stoplist_add(db, entries, now)
                if pause is not None:
                    _set_state(db, campaign, "paused", pause)
            return settled

        return await self._call(finish)

    async def release(self, campaign: int, owner: str) -> int:
        def release(db: sqlite3.Connection) -> int:
            with _transaction(db):
                released: int = db.execute(
                    "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
                    "lease_until = NULL WHERE campaign = ? AND state = 'claimed' AND owner = ?",
                    (campaign, owner),
                ).rowcount
                _tally(db, campaign, {"claimed": -released, "pending": released})
                db.execute("DELETE FROM aiosms_workers WHERE owner = ?", (owner,))
            return released

        return await self._call(release)

    async def heartbeat(self, campaign: int, owner: str, lease: float) -> CampaignInfo:
        def beat(db: sqlite3.Connection) -> CampaignInfo:
            now = time.time()
            with _transaction(db):
                db.execute(
                    "INSERT INTO aiosms_workers (owner, campaign, started_at, heartbeat) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET heartbeat = ?",
                    (owner, campaign, now, now, now),
                )
                db.execute(
                    "UPDATE aiosms_messages SET lease_until = ? WHERE campaign = ? "
                    "AND state = 'claimed' AND owner = ? AND lease_until >= ?",
                    (now + lease, campaign, owner, now),
                )
                row = db.execute(
                    "SELECT id, name, state, reason, settings FROM aiosms_campaigns WHERE id = ?",
                    (campaign,),
                ).fetchone()
            return CampaignInfo(row[0], row[1], row[2], row[3], json.loads(row[4]))

        return await self._call(beat)

    async def requeue(self, campaign: int, state: str, *, reason: str | None = None) -> int:
        def requeue(db: sqlite3.Connection) -> int:
            query = (
                "UPDATE aiosms_messages SET state = 'pending', attempt = NULL, owner = NULL, "
                "lease_until = NULL, message_id = NULL, error_class = NULL, error_code = NULL, "
                "error_text = NULL, cost = NULL, delivery = NULL, reason = NULL, "
                f"sent_at = NULL, settled_at = NULL WHERE {_where_state(state)}"
            )
            params: list[Any] = [campaign]
            if reason is not None:
                query += " AND reason = ?"
                params.append(reason)
            with _transaction(db):
                count: int = db.execute(query, params).rowcount
                _tally(db, campaign, {state: -count, "pending": count})
                _event(db, campaign, "requeue", f"{count} {state} → pending")
            return count

        return await self._call(requeue)

    # -- reading -----------------------------------------------------------------------

    async def counts(self, campaign: int) -> dict[str, int]:
        def count(db: sqlite3.Connection) -> dict[str, int]:
            found = dict(
                db.execute(
                    "SELECT state, n FROM aiosms_counts WHERE campaign = ?", (campaign,)
                ).fetchall()
            )
            return {state: int(found.get(state, 0)) for state in ALL_STATES}

        return await self._call(count)

    async def totals(self, campaign: int) -> tuple[int, str | None]:
        def total(db: sqlite3.Connection) -> tuple[int, str | None]:
            (parts,) = db.execute(
                "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages "
                "WHERE +campaign = ? AND state = 'accepted'",
                (campaign,),
            ).fetchone()
            cost: Decimal | None = None
            # Summed as decimals: money never goes through a float.
            for (value,) in db.execute(
                "SELECT cost FROM aiosms_messages WHERE +campaign = ? AND state = 'accepted' "
                "AND cost IS NOT NULL",
                (campaign,),
            ):
                cost = Decimal(value) if cost is None else cost + Decimal(value)
            return int(parts), None if cost is None else str(cost)

        return await self._call(total)

    async def rows(
        self, campaign: int, *, state: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Row]:
        def read(db: sqlite3.Connection) -> list[Row]:
            # Every state: by id (`+campaign`), not through an index to be sorted.
            where = "+campaign = ?" if state is None else _where_state(state)
            return [
                _row(r)
                for r in db.execute(
                    f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE {where} AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (campaign, after, limit),
                )
            ]

        return await self._call(read)

    async def tracking_page(
        self, campaign: int, *, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        def read(db: sqlite3.Connection) -> list[tuple[int, str, str | None]]:
            return db.execute(
                "SELECT id, message_id, delivery FROM aiosms_messages WHERE +campaign = ? "
                "AND state = 'accepted' AND message_id IS NOT NULL AND id > ? "
                "AND (delivery IS NULL OR delivery NOT IN (?, ?, ?)) ORDER BY id LIMIT ?",
                (campaign, after, *_FINAL_DELIVERY, limit),
            ).fetchall()

        return await self._call(read)

    async def store_delivery(
        self, campaign: int, updates: Sequence[tuple[int, str, int | None]]
    ) -> None:
        def store(db: sqlite3.Connection) -> None:
            now = time.time()
            with _transaction(db):
                db.executemany(
                    "UPDATE aiosms_messages SET delivery = ?, delivery_code = ?, "
                    "delivery_at = ? WHERE id = ? AND campaign = ?",
                    [(state, code, now, row_id, campaign) for row_id, state, code in updates],
                )

        await self._call(store)

    # -- stop list ---------------------------------------------------------------------

    async def stoplist_add(self, entries: Iterable[tuple[str, str]]) -> int:
        items = list(entries)

        def add(db: sqlite3.Connection) -> int:
            with _transaction(db):
                return _stoplist_add(db, items, time.time())

        return await self._call(add)

    async def stoplist_remove(self, phones: Iterable[str]) -> int:
        numbers = list(phones)

        def remove(db: sqlite3.Connection) -> int:
            with _transaction(db):
                before = db.total_changes
                db.executemany(
                    "DELETE FROM aiosms_stoplist WHERE phone = ?", [(p,) for p in numbers]
                )
                return db.total_changes - before

        return await self._call(remove)

    async def stoplist(self) -> list[tuple[str, str]]:
        def read(db: sqlite3.Connection) -> list[tuple[str, str]]:
            return db.execute("SELECT phone, reason FROM aiosms_stoplist ORDER BY phone").fetchall()

        return await self._call(read)


def _prepare_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or bring an older one up to ``SCHEMA_VERSION``."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    found = db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'").fetchone()
    version = SCHEMA_VERSION if found is None else int(found[0])
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the journal's schema is version {version}; this aiosms knows version {SCHEMA_VERSION}"
        )
    if version < 2:
        db.execute("DROP INDEX IF EXISTS aiosms_messages_state")
        db.execute("DELETE FROM aiosms_counts")
        db.execute(
            "INSERT INTO aiosms_counts (campaign, state, n) "
            "SELECT campaign, state, COUNT(*) FROM aiosms_messages GROUP BY campaign, state"
        )
    for statement in _INDEXES.split(";"):
        if statement.strip():
            db.execute(statement)
    if found is None:
        db.execute(
            "INSERT INTO aiosms_meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    elif version < SCHEMA_VERSION:
        db.execute(
            "UPDATE aiosms_meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION),),
        )
        _event(db, None, "migrate", f"schema {version} → {SCHEMA_VERSION}")
        logger.info("journal %s: schema %d migrated to %d", path, version, SCHEMA_VERSION)


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA busy_timeout = 10000")
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"the journal needs WAL mode; SQLite chose {mode!r}")
    # Every commit reaches the disk before it returns: intent before effect.
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    # A campaign of a million rows touches many pages per claim and packet: 32 MB of
    # cache (SQLite's default is 2 MB) keeps them in memory.
    connection.execute("PRAGMA cache_size = -32768")


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on any error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _where_state(state: str) -> str:
    """``campaign = ? AND`` a row state, written so that SQLite uses the index holding it.

    The state is spelled as a literal (a partial index applies only to a query that
    provably selects within it), so it must be one of the known states.
    """
    if state not in ALL_STATES:
        raise ValueError(f"unknown row state {state!r}")
    if state in ("pending", "claimed"):
        return f"campaign = ? AND state = '{state}'"
    # In no index: a pass over the table, in id order.
    return f"+campaign = ? AND state = '{state}'"


_ACCEPT = (
    "UPDATE aiosms_messages SET state = 'accepted', message_id = ?, "
    "parts = COALESCE(?, parts), cost = ?, delivery = ?, settled_at = ? "
    "WHERE id = ? AND attempt = ? AND state = "
)
_SETTLE = (
    "UPDATE aiosms_messages SET state = ?, message_id = ?, "
    "parts = COALESCE(?, parts), cost = ?, error_class = ?, error_code = ?, "
    "error_text = ?, delivery = ?, reason = ?, settled_at = ? "
    "WHERE id = ? AND attempt = ? AND state = "
)


def _settle(
    db: sqlite3.Connection, campaign: int, update: str, state: str, values: Sequence[Any]
) -> int:
    """Settle rows ``sending`` (or ``unknown``: a late outcome) in ``state``; counted.

    One pass per state the rows may come from, so that the counts know where they came
    from; the second pass only if the first left some. Unknown rows are looked for first
    when they are to become unknown again, so that no row is matched twice.
    """
    sources = ("unknown", "sending") if state == "unknown" else ("sending", "unknown")
    settled = 0
    for source in sources:
        before = db.total_changes
        db.executemany(f"{update}'{source}'", values)
        moved = db.total_changes - before
        if source != state:
            _tally(db, campaign, {source: -moved, state: moved})
        settled += moved
        if settled == len(values):
            break
    return settled


def _tally(db: sqlite3.Connection, campaign: int, changes: Mapping[str, int]) -> None:
    """Add ``changes`` (rows per state, negative for rows that left it) to the counts.

    Called in the transaction of every statement that moves rows between states, with
    the rows it moved (its ``rowcount``), so the counts stay exact.
    """
    values = [(campaign, state, n) for state, n in changes.items() if n]
    if values:
        db.executemany(
            "INSERT INTO aiosms_counts (campaign, state, n) VALUES (?, ?, ?) "
            "ON CONFLICT (campaign, state) DO UPDATE SET n = n + excluded.n",
            values,
        )


def _recount(db: sqlite3.Connection, campaign: int) -> None:
    """Count a campaign's rows per state afresh (one pass over its rows)."""
    db.execute("DELETE FROM aiosms_counts WHERE campaign = ?", (campaign,))
    db.execute(
        "INSERT INTO aiosms_counts (campaign, state, n) SELECT campaign, state, COUNT(*) "
        "FROM aiosms_messages WHERE +campaign = ? GROUP BY state",
        (campaign,),
    )


def _campaign(db: sqlite3.Connection, name: str) -> CampaignInfo | None:
    row = db.execute(
        "SELECT id, name, state, reason, settings FROM aiosms_campaigns WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return CampaignInfo(row[0], row[1], row[2], row[3], json.loads(row[4]))


def _set_state(db: sqlite3.Connection, campaign: int, state: str, reason: str | None) -> None:
    db.execute(
        "UPDATE aiosms_campaigns SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
        (state, reason, time.time(), campaign),
    )
    _event(db, campaign, state, reason)


def _event(db: sqlite3.Connection, campaign: int | None, kind: str, detail: str | None) -> None:
    db.execute(
        "INSERT INTO aiosms_events (campaign, at, kind, detail) VALUES (?, ?, ?, ?)",
        (campaign, time.time(), kind, detail),
    )


def _stop_listed(db: sqlite3.Connection, phones: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(phones):
        found.update(
            p
            for (p,) in db.execute(
                f"SELECT phone FROM aiosms_stoplist WHERE phone IN ({_marks(len(chunk))})", chunk
            )
        )
    return found


def _stoplist_add(db: sqlite3.Connection, entries: Sequence[tuple[str, str]], now: float) -> int:
    before = db.total_changes
    db.executemany(
        "INSERT OR IGNORE INTO aiosms_stoplist (phone, reason, added_at) VALUES (?, ?, ?)",
        [(phone, reason, now) for phone, reason in entries],
    )
    return db.total_changes - before


def _known_keys(db: sqlite3.Connection, campaign: int, keys: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for chunk in _chunks(keys):
        known.update(
            k
            for (k,) in db.execute(
                "SELECT key FROM aiosms_messages WHERE campaign = ? "
                f"AND key IN ({_marks(len(chunk))})",
                (campaign, *chunk),
            )
        )
    return known


def _row(r: tuple[Any, ...]) -> Row:
    return read_row(r, _stamp)
