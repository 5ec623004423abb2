"""The shared journal: PostgreSQL, one campaign worked by processes on many machines.

psycopg 3's sync API on one dedicated connection, called in a worker thread
(``anyio.to_thread``): its async API is asyncio-only, and trio users run
campaigns too. Every time that matters to fencing (leases, heartbeats) is the
database's clock, ``now()``, so the workers' own clocks may disagree. Claims lock
the campaign's row (its epoch) and take pending rows ``FOR UPDATE SKIP LOCKED``;
``begin_send`` is a compare-and-set committed with ``synchronous_commit = on``
before the request leaves. Workers record heartbeats in ``aiosms_workers``; any
worker, when it claims or beats, turns the ``sending`` rows of a worker whose
heartbeat went stale into ``unknown`` and puts its ``claimed`` rows back in line.
The connection string is libpq's own and is never shown with its password.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aiosms._errors import ValidationError
from aiosms._models import Message
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
from aiosms.campaigns._rows import new_row, read_row

__all__ = ["SCHEMA_VERSION", "PostgresJournal"]

logger = logging.getLogger("aiosms.campaigns")

SCHEMA_VERSION = 1
#: Seconds a session may stall inside one of the journal's transactions before the
#: server ends it (at most; a run's heartbeats lower it to half its lease).
DEFAULT_STALL = 5.0
#: Runs of one journal call: a transaction the server rolled back runs again.
_ATTEMPTS = 3
#: Key of the transaction-level advisory lock held while the schema is created or
#: upgraded ("aiosms" in ASCII), so concurrent first users do not race.
_SCHEMA_LOCK = 0x6169_6F73_6D73
_T = TypeVar("_T")

# One statement per step: each is idempotent, and the list is the upgrade path from
# nothing to SCHEMA_VERSION (later versions append their own steps).
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS aiosms_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS aiosms_campaigns (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL DEFAULT 'active',
        reason TEXT,
        settings TEXT NOT NULL,
        epoch BIGINT NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS aiosms_messages (
        id BIGSERIAL PRIMARY KEY,
        campaign BIGINT NOT NULL REFERENCES aiosms_campaigns(id),
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
        epoch BIGINT,
        lease_until TIMESTAMPTZ,
        message_id TEXT,
        error_class TEXT,
        error_code INTEGER,
        error_text TEXT,
        cost TEXT,
        delivery TEXT,
        delivery_code INTEGER,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        claimed_at TIMESTAMPTZ,
        sent_at TIMESTAMPTZ,
        settled_at TIMESTAMPTZ,
        delivery_at TIMESTAMPTZ,
        UNIQUE (campaign, key)
    )""",
    "CREATE INDEX IF NOT EXISTS aiosms_messages_state ON aiosms_messages (campaign, state, id)",
    "CREATE INDEX IF NOT EXISTS aiosms_messages_phone ON aiosms_messages (campaign, phone)",
    "CREATE INDEX IF NOT EXISTS aiosms_messages_owner ON aiosms_messages (owner, state)",
    """CREATE TABLE IF NOT EXISTS aiosms_stoplist (
        phone TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        added_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS aiosms_workers (
        owner TEXT PRIMARY KEY,
        campaign BIGINT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        lease DOUBLE PRECISION NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS aiosms_events (
        id BIGSERIAL PRIMARY KEY,
        campaign BIGINT,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        kind TEXT NOT NULL,
        detail TEXT
    )""",
)

_ROW_COLUMNS = (
    "id, key, phone, text, sender, parts, state, reason, attempt, owner, epoch, message_id, "
    "error_class, error_code, error_text, cost, delivery, created_at, sent_at, settled_at, "
    "delivery_at"
)
_FINAL_DELIVERY = ["delivered", "undelivered", "rejected"]
_LOST = (
    "state = 'unknown', reason = 'worker lost', error_class = 'WorkerLost', "
    "error_text = 'the worker stopped while the message was being sent: it may have gone out', "
    "settled_at = now()"
)
#: A worker is alive while its last heartbeat is younger than its lease.
_ALIVE = "w.heartbeat + w.lease * interval '1 second' >= now()"


def masked_conninfo(conninfo: str) -> str:
    """``conninfo`` as libpq keywords, its password (if any) replaced by ``***``."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        # The parser's message quotes the string it choked on: never repeat it.
        raise ValidationError("conninfo", "is not a valid libpq connection string or URI") from None
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)


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
        self._conninfo = conninfo
        self._masked = masked_conninfo(conninfo)
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
        self.connect_timeout = connect_timeout
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        #: Milliseconds a session may stall inside a transaction (see ``_stall_limit``).
        self._stall_ms = _stall_limit(DEFAULT_STALL)
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresJournal({self._masked!r})"

    # -- plumbing ----------------------------------------------------------------------

    async def _call(self, function: Callable[[psycopg.Cursor[Any]], _T]) -> _T:
        """Run ``function`` in one transaction on the connection, in a worker thread.

        Not abandoned on cancellation: a commit that happened must be known to the
        caller (the cancellation takes effect once it returns).
        """
        return await anyio.to_thread.run_sync(self._run, function)

    def _run(self, function: Callable[[psycopg.Cursor[Any]], _T]) -> _T:
        with self._lock:
            for attempt in range(_ATTEMPTS):
                last = attempt == _ATTEMPTS - 1
                if self._closed:
                    raise RuntimeError("the journal is closed")
                connection = self._connection
                if connection is None or connection.closed:
                    connection = self._open()
                xid: int | None = None
                committing = False
                try:
                    with connection.transaction(), connection.cursor() as cursor:
                        # The transaction's id, to ask the server after a lost COMMIT.
                        xid = int(_one(cursor.execute("SELECT txid_current()"))[0])
                        result = function(cursor)
                        committing = True
                    return result
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    # The server rolled it back (two workers' claims and reaping crossed):
                    # nothing of it happened, so it runs again.
                    if last:
                        raise
                except (
                    psycopg.OperationalError,
                    psycopg.errors.IdleInTransactionSessionTimeout,
                ):
                    # The session ended inside the transaction: the process stalled
                    # there (stopped, swapped out) past the server's limit, or the
                    # server went away. Whether it committed is the server's to say;
                    # if not, it runs again on a new connection, and its fences (owner,
                    # epoch, lease) decide again what it may still do.
                    if last or not connection.closed:
                        raise
                    self._connection = None
                    if committing and xid is not None:
                        status = self._status(xid)
                        if status == "committed":
                            return result
                        if status != "aborted":
                            raise
                    logger.warning("the journal's session ended inside a transaction: reconnecting")
            raise AssertionError("unreachable")

    def _status(self, xid: int) -> str | None:
        """``txid_status`` of ``xid`` on a new connection (its COMMIT's answer was lost)."""
        connection = self._open()
        found = connection.execute("SELECT txid_status(%s)", (xid,)).fetchone()
        return None if found is None else found[0]

    def _open(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, math.ceil(self.connect_timeout)),
                application_name="aiosms",
            )
        except psycopg.Error as error:
            message = str(error)
            password = conninfo_to_dict(self._conninfo).get("password")
            if password:
                message = message.replace(str(password), "***")
            raise ConnectionError(f"cannot open the journal {self._masked}: {message}") from None
        try:
            # Every commit waits for the WAL flush, whatever the server's default:
            # the `sending` commit is the promise that makes a crash safe.
            connection.execute("SET synchronous_commit = on")
            # A process stalled inside a transaction (SIGSTOP, a frozen VM) would hold
            # its locks (the campaign's row, its heartbeat) and stall every worker of
            # the fleet: the server ends such a session after a while instead.
            connection.execute(f"SET idle_in_transaction_session_timeout = {self._stall_ms}")
            with connection.transaction(), connection.cursor() as cursor:
                ensure_schema(cursor)
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
        """The schema version recorded in the database's ``aiosms_meta`` table."""

        def read(db: psycopg.Cursor[Any]) -> int:
            db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'")
            return int(_one(db)[0])

        return await self._call(read)

    # -- the application's own transaction ---------------------------------------------

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
        batch = list(messages)
        for message in batch:
            if not isinstance(message, Message):
                raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
            if message.key is None:
                raise ValidationError("key", "is required to enqueue a message (idempotency)")
        with connection.cursor() as db:
            ensure_schema(db)
            db.execute("SELECT id, settings FROM aiosms_campaigns WHERE name = %s", (campaign,))
            found = db.fetchone()
            if found is None:
                raise LookupError(f"no campaign named {campaign!r}")
            campaign_id, raw = found
            settings = json.loads(raw)
            rows = [
                new_row(str(m.key), m, settings.get("sender"), settings.get("max_parts"))
                for m in batch
            ]
            return _import(db, campaign_id, rows, dedupe=bool(settings.get("dedupe", True)))

    # -- campaigns ---------------------------------------------------------------------

    async def create_campaign(self, name: str, settings: Mapping[str, Any]) -> CampaignInfo:
        def create(db: psycopg.Cursor[Any]) -> CampaignInfo:
            db.execute(
                "INSERT INTO aiosms_campaigns (name, settings) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, json.dumps(dict(settings))),
            )
            info = _campaign(db, name)
            assert info is not None
            return info

        return await self._call(create)

    async def get_campaign(self, name: str) -> CampaignInfo | None:
        return await self._call(lambda db: _campaign(db, name))

    async def list_campaigns(self) -> list[CampaignInfo]:
        def read(db: psycopg.Cursor[Any]) -> list[CampaignInfo]:
            db.execute("SELECT id, name, state, reason, settings FROM aiosms_campaigns ORDER BY id")
            return [CampaignInfo(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in db]

        return await self._call(read)

    async def set_campaign_state(
        self,
        campaign: int,
        state: str,
        reason: str | None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        def update(db: psycopg.Cursor[Any]) -> None:
            _set_state(db, campaign, state, reason)
            if settings is not None:
                db.execute(
                    "UPDATE aiosms_campaigns SET settings = %s WHERE id = %s",
                    (json.dumps(dict(settings)), campaign),
                )

        await self._call(update)

    async def purge_campaigns(self, before: float) -> list[str]:
        def purge(db: psycopg.Cursor[Any]) -> list[str]:
            found = db.execute(
                # Last changed: the campaign's own record or any of its rows.
                "SELECT id, name FROM aiosms_campaigns c WHERE updated_at < to_timestamp(%s) "
                "AND COALESCE((SELECT MAX(GREATEST(created_at, settled_at, delivery_at)) "
                "FROM aiosms_messages m WHERE m.campaign = c.id), 'epoch') < to_timestamp(%s) "
                "AND NOT EXISTS (SELECT 1 FROM aiosms_messages m WHERE m.campaign = c.id "
                "AND m.state IN ('claimed', 'sending')) ORDER BY id FOR UPDATE",
                (before, before),
            ).fetchall()
            for campaign, name in found:
                for table in ("aiosms_messages", "aiosms_events", "aiosms_workers"):
                    db.execute(f"DELETE FROM {table} WHERE campaign = %s", (campaign,))
                db.execute("DELETE FROM aiosms_campaigns WHERE id = %s", (campaign,))
                _event(db, None, "purge", name)
            return [str(name) for _, name in found]

        return await self._call(purge)

    async def settled_since(self, campaign: int, since: float) -> int:
        def count(db: psycopg.Cursor[Any]) -> int:
            row = db.execute(
                "SELECT COUNT(*) FROM aiosms_messages WHERE campaign = %s "
                "AND settled_at >= to_timestamp(%s) "
                "AND state IN ('accepted', 'rejected', 'unknown')",
                (campaign, since),
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._call(count)

    # -- rows --------------------------------------------------------------------------

    async def import_rows(
        self, campaign: int, rows: Sequence[NewRow], *, dedupe: bool
    ) -> ImportResult:
        return await self._call(lambda db: _import(db, campaign, rows, dedupe=dedupe))

    async def recover(self, campaign: int) -> tuple[int, int]:
        """At start-up: rows of workers that are not alive (no heartbeat, or a stale one).

        Unlike SQLite's one-machine rule, the ``sending`` rows of workers still
        beating elsewhere are left alone: they are being sent right now.
        """

        def recover(db: psycopg.Cursor[Any]) -> tuple[int, int]:
            lost, released = _reap(db, campaign, orphans=True)
            return lost, released

        return await self._call(recover)

    async def claim(
        self, campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        def claim(db: psycopg.Cursor[Any]) -> Claim:
            _reap(db, campaign, orphans=False)
            # The campaign's row is the claims' lock: one claim at a time per campaign,
            # so the budget is counted once, and a pause set elsewhere is seen here.
            db.execute(
                "UPDATE aiosms_campaigns SET epoch = epoch + 1 WHERE id = %s "
                "RETURNING epoch, state",
                (campaign,),
            )
            epoch, state = _one(db)
            if state != "active":
                return Claim(0, [])
            db.execute(
                "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
                "lease_until = NULL WHERE campaign = %s AND state = 'claimed' "
                "AND lease_until < now()",
                (campaign,),
            )
            db.execute(
                "SELECT m.id, m.phone, m.text, m.sender, m.at, m.ttl, m.parts, "
                "s.phone IS NOT NULL FROM aiosms_messages AS m "
                "LEFT JOIN aiosms_stoplist AS s ON s.phone = m.phone "
                "WHERE m.campaign = %s AND m.state = 'pending' ORDER BY m.id LIMIT %s "
                "FOR UPDATE OF m SKIP LOCKED",
                (campaign, limit),
            )
            candidates = db.fetchall()
            if not candidates:
                return Claim(0, [])
            stopped = [c[0] for c in candidates if c[7]]
            if stopped:
                db.execute(
                    "UPDATE aiosms_messages SET state = 'skipped', reason = 'stop-listed', "
                    "settled_at = now() WHERE id = ANY(%s)",
                    (stopped,),
                )
                candidates = [c for c in candidates if not c[7]]
            exhausted = False
            if budget is not None:
                db.execute(
                    "SELECT COALESCE(SUM(parts), 0) FROM aiosms_messages WHERE campaign = %s "
                    "AND state IN ('claimed', 'sending', 'accepted', 'unknown')",
                    (campaign,),
                )
                room = budget - int(_one(db)[0])
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
                "UPDATE aiosms_messages SET state = 'claimed', owner = %s, epoch = %s, "
                "lease_until = now() + %s * interval '1 second', claimed_at = now() "
                "WHERE id = ANY(%s)",
                (owner, epoch, lease, [c[0] for c in candidates]),
            )
            return Claim(epoch, [ClaimedRow(*c[:6]) for c in candidates], exhausted)

        return await self._call(claim)

    async def begin_send(
        self, campaign: int, owner: str, rows: Sequence[tuple[int, int]], attempt: str
    ) -> set[int]:
        by_epoch: dict[int, list[int]] = {}
        for row_id, epoch in rows:
            by_epoch.setdefault(epoch, []).append(row_id)

        def begin(db: psycopg.Cursor[Any]) -> set[int]:
            changed: set[int] = set()
            for epoch, ids in by_epoch.items():
                # The fence: still this owner's, under this epoch, lease running on the
                # database's clock, and the campaign not paused since the claim.
                db.execute(
                    "UPDATE aiosms_messages SET state = 'sending', attempt = %s, "
                    "sent_at = now() WHERE campaign = %s AND state = 'claimed' "
                    "AND owner = %s AND epoch = %s AND lease_until >= now() AND id = ANY(%s) "
                    "AND EXISTS (SELECT 1 FROM aiosms_campaigns AS c WHERE c.id = %s "
                    "AND c.state = 'active') RETURNING id",
                    (attempt, campaign, owner, epoch, ids, campaign),
                )
                changed.update(i for (i,) in db)
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

        def finish(db: psycopg.Cursor[Any]) -> int:
            settled = 0
            accepted = [o for o in outcomes if o.state == "accepted"]
            if accepted:
                # One statement for the packet's accepted rows: a join on unnested arrays.
                db.execute(
                    "UPDATE aiosms_messages AS m SET state = 'accepted', "
                    "message_id = u.message_id, parts = COALESCE(u.parts, m.parts), "
                    "cost = u.cost, delivery = u.delivery, settled_at = now() "
                    "FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[], %s::text[]) "
                    "AS u(id, message_id, parts, cost, delivery) "
                    "WHERE m.id = u.id AND m.attempt = %s AND m.state IN ('sending', 'unknown')",
                    (
                        [o.id for o in accepted],
                        [o.message_id for o in accepted],
                        [o.parts for o in accepted],
                        [o.cost for o in accepted],
                        [o.delivery for o in accepted],
                        attempt,
                    ),
                )
                settled += db.rowcount
            others = [o for o in outcomes if o.state != "accepted"]
            if others:
                db.execute(
                    "UPDATE aiosms_messages AS m SET state = u.state, "
                    "message_id = u.message_id, parts = COALESCE(u.parts, m.parts), "
                    "cost = u.cost, error_class = u.error_class, error_code = u.error_code, "
                    "error_text = u.error_text, delivery = u.delivery, reason = u.reason, "
                    "settled_at = now() FROM unnest(%s::bigint[], %s::text[], %s::text[], "
                    "%s::int[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], "
                    "%s::text[]) AS u(id, state, message_id, parts, cost, error_class, "
                    "error_code, error_text, delivery, reason) "
                    "WHERE m.id = u.id AND m.attempt = %s AND m.state IN ('sending', 'unknown')",
                    [*(list(c) for c in zip(*others, strict=True)), attempt],
                )
                settled += db.rowcount
            if entries:
                _stoplist_add(db, entries)
            if pause is not None:
                _set_state(db, campaign, "paused", pause)
            return settled

        return await self._call(finish)

    async def release(self, campaign: int, owner: str) -> int:
        def release(db: psycopg.Cursor[Any]) -> int:
            db.execute(
                "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
                "lease_until = NULL WHERE campaign = %s AND state = 'claimed' AND owner = %s",
                (campaign, owner),
            )
            released = db.rowcount
            db.execute("DELETE FROM aiosms_workers WHERE owner = %s", (owner,))
            return released

        return await self._call(release)

    async def heartbeat(self, campaign: int, owner: str, lease: float) -> CampaignInfo:
        host, pid = socket.gethostname(), os.getpid()

        stall = _stall_limit(lease / 2)

        def beat(db: psycopg.Cursor[Any]) -> CampaignInfo:
            if stall != self._stall_ms:
                # Well within the lease, so a stalled worker's locks go before its
                # lease ends and the others can reap it (kept for the session).
                db.execute(f"SET idle_in_transaction_session_timeout = {stall}")
                self._stall_ms = stall
            db.execute(
                "INSERT INTO aiosms_workers (owner, campaign, host, pid, lease) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (owner) DO UPDATE "
                "SET heartbeat = now(), lease = EXCLUDED.lease",
                (owner, campaign, host, pid, lease),
            )
            db.execute(
                "UPDATE aiosms_messages SET lease_until = now() + %s * interval '1 second' "
                "WHERE campaign = %s AND state = 'claimed' AND owner = %s "
                "AND lease_until >= now()",
                (lease, campaign, owner),
            )
            _reap(db, campaign, orphans=False)
            db.execute(
                "SELECT id, name, state, reason, settings FROM aiosms_campaigns WHERE id = %s",
                (campaign,),
            )
            r = _one(db)
            return CampaignInfo(r[0], r[1], r[2], r[3], json.loads(r[4]))

        return await self._call(beat)

    async def live_workers(self, campaign: int) -> int:
        """Workers of the campaign whose heartbeat is fresh (at least 1)."""

        def count(db: psycopg.Cursor[Any]) -> int:
            db.execute(
                f"SELECT COUNT(*) FROM aiosms_workers AS w WHERE w.campaign = %s AND {_ALIVE}",
                (campaign,),
            )
            return max(1, int(_one(db)[0]))

        return await self._call(count)

    async def requeue(self, campaign: int, state: str, *, reason: str | None = None) -> int:
        def requeue(db: psycopg.Cursor[Any]) -> int:
            query = (
                "UPDATE aiosms_messages SET state = 'pending', attempt = NULL, owner = NULL, "
                "lease_until = NULL, message_id = NULL, error_class = NULL, error_code = NULL, "
                "error_text = NULL, cost = NULL, delivery = NULL, reason = NULL, "
                "sent_at = NULL, settled_at = NULL WHERE campaign = %s AND state = %s"
            )
            params: list[Any] = [campaign, state]
            if reason is not None:
                query += " AND reason = %s"
                params.append(reason)
            db.execute(query, params)
            count = db.rowcount
            _event(db, campaign, "requeue", f"{count} {state} → pending")
            return count

        return await self._call(requeue)

    # -- reading -----------------------------------------------------------------------

    async def counts(self, campaign: int) -> dict[str, int]:
        def count(db: psycopg.Cursor[Any]) -> dict[str, int]:
            db.execute(
                "SELECT state, COUNT(*) FROM aiosms_messages WHERE campaign = %s GROUP BY state",
                (campaign,),
            )
            found = dict(db.fetchall())
            return {state: int(found.get(state, 0)) for state in ALL_STATES}

        return await self._call(count)

    async def totals(self, campaign: int) -> tuple[int, str | None]:
        def total(db: psycopg.Cursor[Any]) -> tuple[int, str | None]:
            # Summed as numerics: money never goes through a float.
            db.execute(
                "SELECT COALESCE(SUM(parts), 0), SUM(cost::numeric) FROM aiosms_messages "
                "WHERE campaign = %s AND state = 'accepted'",
                (campaign,),
            )
            parts, cost = _one(db)
            return int(parts), None if cost is None else str(cost)

        return await self._call(total)

    async def rows(
        self, campaign: int, *, state: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Row]:
        def read(db: psycopg.Cursor[Any]) -> list[Row]:
            query = f"SELECT {_ROW_COLUMNS} FROM aiosms_messages WHERE campaign = %s AND id > %s"
            params: list[Any] = [campaign, after]
            if state is not None:
                query += " AND state = %s"
                params.append(state)
            query += " ORDER BY id LIMIT %s"
            params.append(limit)
            db.execute(query, params)
            return [_row(r) for r in db]

        return await self._call(read)

    async def tracking_page(
        self, campaign: int, *, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        def read(db: psycopg.Cursor[Any]) -> list[tuple[int, str, str | None]]:
            db.execute(
                "SELECT id, message_id, delivery FROM aiosms_messages WHERE campaign = %s "
                "AND state = 'accepted' AND message_id IS NOT NULL AND id > %s "
                "AND (delivery IS NULL OR NOT delivery = ANY(%s)) ORDER BY id LIMIT %s",
                (campaign, after, _FINAL_DELIVERY, limit),
            )
            return [(r[0], r[1], r[2]) for r in db]

        return await self._call(read)

    async def store_delivery(
        self, campaign: int, updates: Sequence[tuple[int, str, int | None]]
    ) -> None:
        def store(db: psycopg.Cursor[Any]) -> None:
            db.executemany(
                "UPDATE aiosms_messages SET delivery = %s, delivery_code = %s, "
                "delivery_at = now() WHERE id = %s AND campaign = %s",
                [(state, code, row_id, campaign) for row_id, state, code in updates],
            )

        await self._call(store)

    # -- stop list ---------------------------------------------------------------------

    async def stoplist_add(self, entries: Iterable[tuple[str, str]]) -> int:
        items = list(entries)
        return await self._call(lambda db: _stoplist_add(db, items))

    async def stoplist_remove(self, phones: Iterable[str]) -> int:
        numbers = list(phones)

        def remove(db: psycopg.Cursor[Any]) -> int:
            db.execute("DELETE FROM aiosms_stoplist WHERE phone = ANY(%s)", (numbers,))
            return db.rowcount

        return await self._call(remove)

    async def stoplist(self) -> list[tuple[str, str]]:
        def read(db: psycopg.Cursor[Any]) -> list[tuple[str, str]]:
            db.execute("SELECT phone, reason FROM aiosms_stoplist ORDER BY phone")
            return [(r[0], r[1]) for r in db]

        return await self._call(read)


def _stall_limit(seconds: float) -> int:
    """``idle_in_transaction_session_timeout`` in ms: ``seconds``, at most DEFAULT_STALL.

    The journal's transactions never wait on anything but the database between their
    statements (milliseconds), so a session idle in one this long is a stalled process.
    """
    return max(200, int(min(seconds, DEFAULT_STALL) * 1000))


def ensure_schema(db: psycopg.Cursor[Any]) -> None:
    """Create or upgrade the ``aiosms_*`` tables, inside the cursor's transaction.

    Cheap when the schema is current (one query). Otherwise a transaction-level
    advisory lock makes concurrent first users take turns; it ends with the
    transaction.
    """
    if _version(db) == SCHEMA_VERSION:
        return
    db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    found = _version(db)
    if found is not None and found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the journal's schema is version {found}; this aiosms knows version {SCHEMA_VERSION}"
        )
    if found == SCHEMA_VERSION:
        return
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute(
        "INSERT INTO aiosms_meta (key, value) VALUES ('schema_version', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (str(SCHEMA_VERSION),),
    )


def _version(db: psycopg.Cursor[Any]) -> int | None:
    db.execute("SELECT to_regclass('aiosms_meta') IS NOT NULL")
    if not _one(db)[0]:
        return None
    db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'")
    found = db.fetchone()
    return None if found is None else int(found[0])


def _one(db: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    found = db.fetchone()
    if found is None:
        raise RuntimeError("the journal returned no row where one was expected")
    return tuple(found)


def _reap(db: psycopg.Cursor[Any], campaign: int, *, orphans: bool) -> tuple[int, int]:
    """Rows of lost workers: ``sending`` → ``unknown``, ``claimed`` → ``pending``.

    A worker is lost when its heartbeat is older than its lease; with ``orphans``
    (at start-up), also when it has no heartbeat at all (it ended without releasing,
    or was never a beating worker). Returns (lost, released).
    """
    # A worker whose row is locked is beating right now: alive, skipped (waiting for
    # it could deadlock with its heartbeat).
    db.execute(
        "DELETE FROM aiosms_workers WHERE owner IN (SELECT owner FROM aiosms_workers AS w "
        f"WHERE w.campaign = %s AND NOT ({_ALIVE}) FOR UPDATE SKIP LOCKED) RETURNING owner",
        (campaign,),
    )
    gone = [r[0] for r in db]
    if not gone and not orphans:
        return 0, 0
    if orphans:
        lost_owner = (
            "NOT EXISTS (SELECT 1 FROM aiosms_workers AS w WHERE w.owner = aiosms_messages.owner)"
        )
        params: tuple[Any, ...] = (campaign,)
    else:
        lost_owner = "owner = ANY(%s)"
        params = (campaign, gone)
    db.execute(
        f"UPDATE aiosms_messages SET {_LOST} WHERE campaign = %s AND state = 'sending' "
        f"AND {lost_owner}",
        params,
    )
    lost = db.rowcount
    db.execute(
        "UPDATE aiosms_messages SET state = 'pending', owner = NULL, lease_until = NULL "
        f"WHERE campaign = %s AND state = 'claimed' AND {lost_owner}",
        params,
    )
    released = db.rowcount
    if lost or released:
        _event(db, campaign, "recover", f"{lost} sending → unknown, {released} claimed → pending")
    if lost:
        logger.warning(
            "campaign %d: %d message(s) were being sent by a worker that stopped beating: "
            "marked unknown, never resent",
            campaign,
            lost,
        )
    return lost, released


def _import(
    db: psycopg.Cursor[Any], campaign: int, rows: Sequence[NewRow], *, dedupe: bool
) -> ImportResult:
    phones = sorted({r.phone for r in rows if r.state == "pending"})
    db.execute("SELECT phone FROM aiosms_stoplist WHERE phone = ANY(%s)", (phones,))
    stopped = {r[0] for r in db}
    taken: set[str] = set()
    if dedupe:
        db.execute(
            "SELECT phone FROM aiosms_messages WHERE campaign = %s AND phone = ANY(%s)",
            (campaign, phones),
        )
        taken.update(r[0] for r in db)
    db.execute(
        "SELECT key FROM aiosms_messages WHERE campaign = %s AND key = ANY(%s)",
        (campaign, [r.key for r in rows]),
    )
    known = {r[0] for r in db}
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
            (campaign, row.key, row.phone, row.text, row.sender, row.at, row.ttl, row.parts,
             state, reason)
        )  # fmt: skip
    if not values:
        return ImportResult(0, 0)
    # One statement for the chunk; a key imported meanwhile by someone else is left alone.
    columns = list(zip(*values, strict=True))
    db.execute(
        "INSERT INTO aiosms_messages (campaign, key, phone, text, sender, at, ttl, parts, "
        "state, reason) SELECT campaign, key, phone, text, sender, at, ttl, parts, state, reason "
        "FROM unnest(%s::bigint[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::text[], %s::text[]) "
        "WITH ORDINALITY AS u(campaign, key, phone, text, sender, at, ttl, parts, state, "
        "reason, n) ORDER BY n ON CONFLICT (campaign, key) DO NOTHING",
        [list(c) for c in columns],
    )
    return ImportResult(db.rowcount, skipped)


def _campaign(db: psycopg.Cursor[Any], name: str) -> CampaignInfo | None:
    db.execute(
        "SELECT id, name, state, reason, settings FROM aiosms_campaigns WHERE name = %s", (name,)
    )
    row = db.fetchone()
    if row is None:
        return None
    return CampaignInfo(row[0], row[1], row[2], row[3], json.loads(row[4]))


def _set_state(db: psycopg.Cursor[Any], campaign: int, state: str, reason: str | None) -> None:
    db.execute(
        "UPDATE aiosms_campaigns SET state = %s, reason = %s, updated_at = now() WHERE id = %s",
        (state, reason, campaign),
    )
    _event(db, campaign, state, reason)


def _event(db: psycopg.Cursor[Any], campaign: int | None, kind: str, detail: str | None) -> None:
    db.execute(
        "INSERT INTO aiosms_events (campaign, kind, detail) VALUES (%s, %s, %s)",
        (campaign, kind, detail),
    )


def _stoplist_add(db: psycopg.Cursor[Any], entries: Sequence[tuple[str, str]]) -> int:
    if not entries:
        return 0
    db.execute(
        "INSERT INTO aiosms_stoplist (phone, reason) "
        "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT (phone) DO NOTHING",
        ([p for p, _ in entries], [r for _, r in entries]),
    )
    return db.rowcount


def _row(r: Sequence[Any]) -> Row:
    # psycopg gives timestamps as aware datetimes already.
    return read_row(r, _as_is)


def _as_is(value: datetime | None) -> datetime | None:
    return value
