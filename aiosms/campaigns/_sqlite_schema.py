"""The SQLite journal's file: its schema, its migrations, its connection settings, and
the small statements every other part of the journal shares.

Version history (``SCHEMA_VERSION``):

1. One ``(campaign, state)`` index over every row.
2. Partial indexes of pending and claimed rows, and a table of counts per state.
3. Claims and packets are records of their own instead of states written into every
   row: ``aiosms_claims`` (owner, epoch, lease, the id range taken, rows not yet sent)
   and ``aiosms_attempts`` (one per packet: attempt id, owner, epoch, its row ids, rows
   not yet settled), written before the packet's request leaves. A row stays
   ``pending`` in ``aiosms_messages`` until it is settled, the only time it is
   rewritten (with ``packet``, the number of its attempt record); until then it is
   *sending* while a live attempt lists it, and *claimed* while it lies in a live
   claim's range. Releasing, expiring or extending a claim touches one record.
4. A row of ``aiosms_messages`` is written once, at import (``pending`` or ``skipped``):
   its outcome is a row of its own in ``aiosms_outcomes``, inserted when it is settled,
   not an update of the message row (an insert costs SQLite about half as much). A claim
   takes rows past the campaign's watermark (``claimed_to``) or from
   ``aiosms_returned`` (rows a released claim or a requeue gave back), and lists the ids
   it took; a packet is fenced on its claim's record alone.
5. A packet whose rows are all settled at once keeps its accepted outcomes in its own
   record (``aiosms_attempts.accepted``, one JSON array, with their parts and cost
   summed beside it) instead of a row each: the one write the send path makes per
   packet. They become rows of ``aiosms_outcomes``
   (``expand_packets``) before anything reads or changes outcomes, in the same
   transaction, so every reader sees what it saw at schema 4.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from aiosms.campaigns._models import CampaignInfo
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info

__all__ = [
    "SCHEMA_VERSION",
    "Transaction",
    "campaign_by_name",
    "chunks",
    "configure",
    "create_private_file",
    "expand_packets",
    "in_snapshot",
    "json_functions",
    "log_event",
    "marks",
    "prepare_schema",
    "recount",
    "set_campaign_state",
    "tally",
    "with_outcomes",
]

logger = logging.getLogger("aiosms.campaigns")

SCHEMA_VERSION = 5
#: Ids per ``IN (…)`` list: under SQLite's oldest limit on bound parameters (999).
CHUNK = 500
_T = TypeVar("_T")

_TABLES = """
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
    claimed_to INTEGER NOT NULL DEFAULT 0,
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
    packet INTEGER,
    requeued INTEGER NOT NULL DEFAULT 0,
    UNIQUE (campaign, key)
);
CREATE INDEX IF NOT EXISTS aiosms_messages_phone ON aiosms_messages (campaign, phone);
CREATE TABLE IF NOT EXISTS aiosms_counts (
    campaign INTEGER NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (campaign, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aiosms_claims (
    campaign INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    sent BLOB NOT NULL DEFAULT x'',
    schema INTEGER NOT NULL DEFAULT 3,
    PRIMARY KEY (campaign, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aiosms_attempts (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL,
    attempt TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    owner TEXT NOT NULL,
    ids TEXT NOT NULL,
    unsettled INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    started_at REAL NOT NULL,
    accepted TEXT,
    accepted_parts INTEGER,
    accepted_cost TEXT,
    settled_at REAL,
    UNIQUE (campaign, attempt, epoch)
);
CREATE TABLE IF NOT EXISTS aiosms_claim_rows (
    campaign INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    rows BLOB NOT NULL,
    UNIQUE (campaign, epoch)
);
CREATE TABLE IF NOT EXISTS aiosms_outcomes (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL,
    state TEXT NOT NULL,
    packet INTEGER,
    settled_at REAL,
    message_id TEXT,
    parts INTEGER,
    cost TEXT,
    delivery TEXT,
    error_class TEXT,
    error_code INTEGER,
    error_text TEXT,
    reason TEXT,
    delivery_code INTEGER,
    delivery_at REAL
);
CREATE TABLE IF NOT EXISTS aiosms_returned (
    campaign INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (campaign, id)
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

# Claims find fresh rows through a partial index of `pending` rows, seeking past the
# campaign's watermark. A row enters it at import and stays (its outcome is a row of
# its own), so the index is never rewritten while a campaign runs. Counts per state
# live in `aiosms_counts`, kept by every statement that changes a row's state (see
# `tally`); queries for other states walk the tables in id order (`+campaign` keeps
# SQLite from going through another index and sorting). Queries name the state as a
# literal: a partial index applies only where SQLite can prove the query is within it.
_INDEXES = """
CREATE INDEX IF NOT EXISTS aiosms_messages_pending ON aiosms_messages (campaign)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS aiosms_attempts_live ON aiosms_attempts (campaign)
    WHERE unsettled > 0;
CREATE INDEX IF NOT EXISTS aiosms_attempts_unexpanded ON aiosms_attempts (campaign)
    WHERE accepted IS NOT NULL
"""

# A worker of an older version still running when its file was migrated would claim rows
# already settled (their outcomes are elsewhere now), settle or skip rows in place, and
# end claims without giving their rows back. The triggers make each of those fail: schema
# 4 changes a row's state only in a requeue, which counts it (`requeued`), inserts its
# claims with its schema version, and zeroes a claim's `remaining` once its rows are given
# back. A schema-4 worker would miss the accepted outcomes schema 5 keeps in packet
# records, so its claims are refused too.
# A claim's row ids and parts are written once, beside its record: the record changes
# with every packet, and SQLite rewrites a whole row, overflow pages and all.
_CLAIM_ROWS_END_WITH_THEIR_CLAIM = (
    "CREATE TRIGGER IF NOT EXISTS aiosms_claim_rows_end_with_their_claim AFTER DELETE ON "
    "aiosms_claims BEGIN DELETE FROM aiosms_claim_rows WHERE campaign = OLD.campaign "
    "AND epoch = OLD.epoch; END"
)
_REFUSAL = (
    f"BEGIN SELECT RAISE(ABORT, 'this journal is at schema {SCHEMA_VERSION}: stop workers of "
    "older aiosms versions'); END"
)
_FENCE_OLDER_WORKERS = (
    "DROP TRIGGER IF EXISTS aiosms_messages_fenced_from_older_workers",
    "CREATE TRIGGER aiosms_messages_fenced_from_older_workers BEFORE UPDATE OF state ON "
    f"aiosms_messages WHEN NEW.requeued IS OLD.requeued {_REFUSAL}",
    "CREATE TRIGGER IF NOT EXISTS aiosms_claims_fenced_from_older_workers BEFORE INSERT ON "
    f"aiosms_claims WHEN NEW.schema < {SCHEMA_VERSION} {_REFUSAL}",
    "CREATE TRIGGER IF NOT EXISTS aiosms_claims_end_with_their_rows_given_back BEFORE DELETE "
    f"ON aiosms_claims WHEN OLD.remaining > 0 {_REFUSAL}",
)


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    """``count`` placeholders for an ``IN (…)`` list."""
    return ",".join("?" * count)


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


def configure(connection: sqlite3.Connection) -> None:
    """WAL, durable commits, foreign keys and a larger cache, or an error."""
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


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on any error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def prepare_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or bring an older one up to ``SCHEMA_VERSION``."""
    for statement in _TABLES.split(";"):
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
    if version < 3:
        _claims_become_records(db)
    _new_columns(db)
    for statement in _INDEXES.split(";"):
        if statement.strip():
            db.execute(statement)
    if version < SCHEMA_VERSION:
        # Fences are (re)made once the rows are where this schema wants them.
        for name in ("claims_fenced_from_older_workers", "claims_end_with_their_rows_given_back"):
            db.execute(f"DROP TRIGGER IF EXISTS aiosms_{name}")
    if version < 4:
        _outcomes_become_rows(db)
    for statement in _FENCE_OLDER_WORKERS:
        db.execute(statement)
    db.execute(_CLAIM_ROWS_END_WITH_THEIR_CLAIM)
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
        log_event(db, None, "migrate", f"schema {version} → {SCHEMA_VERSION}")
        logger.info("journal %s: schema %d migrated to %d", path, version, SCHEMA_VERSION)


def _claims_become_records(db: sqlite3.Connection) -> None:
    """Schema 3: rows an older version left ``claimed`` go back to ``pending``.

    A claim is provably unsent, and a worker of the older version still holding one
    can no longer send it: its fenced update looks for ``claimed`` rows and finds none.
    Rows it left ``sending`` stay so, and start-up recovery finds them.
    """
    moved = db.execute(
        "SELECT campaign, COUNT(*) FROM aiosms_messages WHERE state = 'claimed' GROUP BY campaign"
    ).fetchall()
    db.execute(
        "UPDATE aiosms_messages SET state = 'pending', owner = NULL, lease_until = NULL "
        "WHERE state = 'claimed'"
    )
    for campaign, count in moved:
        tally(db, campaign, {"claimed": -count, "pending": count})
    db.execute("DROP INDEX IF EXISTS aiosms_messages_claimed")
    columns = {row[1] for row in db.execute("PRAGMA table_info(aiosms_messages)")}
    if "packet" not in columns:
        db.execute("ALTER TABLE aiosms_messages ADD COLUMN packet INTEGER")


def _add_columns(db: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """``ALTER TABLE … ADD COLUMN`` each of ``columns`` (name → declaration) ``table``
    lacks."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


# A row settled in place by an older schema: its outcome moves to `aiosms_outcomes`. A
# `sending` row (left by schema 1 or 2, the worker long gone) becomes unknown, as
# start-up recovery would have made it; a skipped row with a settling time was
# stop-listed when claimed (skipped at import, it has none and stays where it is).
_MOVED = (
    "state IN ('accepted', 'rejected', 'unknown', 'sending') "
    "OR (state = 'skipped' AND settled_at IS NOT NULL)"
)
_MOVE_OUTCOMES = (
    "INSERT INTO aiosms_outcomes (id, campaign, state, packet, settled_at, message_id, parts, "
    "cost, delivery, error_class, error_code, error_text, reason, delivery_code, delivery_at) "
    "SELECT id, campaign, CASE state WHEN 'sending' THEN 'unknown' ELSE state END, packet, "
    "COALESCE(settled_at, ?1), message_id, parts, cost, delivery, "
    "CASE state WHEN 'sending' THEN 'WorkerLost' ELSE error_class END, error_code, "
    "CASE state WHEN 'sending' THEN 'the worker stopped while the message was being sent: it "
    "may have gone out' ELSE error_text END, "
    "CASE state WHEN 'sending' THEN 'worker lost' ELSE reason END, delivery_code, delivery_at "
    f"FROM aiosms_messages WHERE {_MOVED}"
)


def _new_columns(db: sqlite3.Connection) -> None:
    """The columns schemas 4 and 5 added to older tables (a no-op once they are there)."""
    _add_columns(db, "aiosms_campaigns", {"claimed_to": "INTEGER NOT NULL DEFAULT 0"})
    _add_columns(db, "aiosms_messages", {"requeued": "INTEGER NOT NULL DEFAULT 0"})
    _add_columns(
        db,
        "aiosms_claims",
        {
            "sent": "BLOB NOT NULL DEFAULT x''",
            "schema": "INTEGER NOT NULL DEFAULT 3",
        },
    )
    _add_columns(
        db,
        "aiosms_attempts",
        {
            "accepted": "TEXT",
            "accepted_parts": "INTEGER",
            "accepted_cost": "TEXT",
            "settled_at": "REAL",
        },
    )


def _outcomes_become_rows(db: sqlite3.Connection) -> None:
    """Schema 4: outcomes move to ``aiosms_outcomes``, claims end, watermarks are set.

    The message rows are not rewritten (their old state is no longer read once their
    outcome is elsewhere). Claims of the older version end (their rows are provably
    unsent and pending again); its packets still live stay so, for start-up recovery.
    Each campaign's watermark is the last row settled or on the wire; pending rows below
    it held by no packet go to ``aiosms_returned``, where the next claims look first.
    """
    db.execute("DELETE FROM aiosms_claims")
    db.execute(_MOVE_OUTCOMES, (time.time(),))
    live: dict[int, set[int]] = {}
    for campaign, ids in db.execute(
        "SELECT campaign, ids FROM aiosms_attempts WHERE unsettled > 0"
    ).fetchall():
        live.setdefault(campaign, set()).update(json.loads(ids))
    # One pass over each table for every campaign at once: a file may hold many.
    watermarks: dict[int, int] = dict(
        db.execute("SELECT campaign, MAX(id) FROM aiosms_outcomes GROUP BY campaign").fetchall()
    )
    for campaign, on_the_wire in live.items():
        watermarks[campaign] = max(watermarks.get(campaign, 0), *on_the_wire)
    db.executemany(
        "UPDATE aiosms_campaigns SET claimed_to = ? WHERE id = ?",
        [(mark, campaign) for campaign, mark in watermarks.items()],
    )
    db.execute(
        "INSERT INTO aiosms_returned (campaign, id) SELECT m.campaign, m.id "
        "FROM aiosms_messages AS m JOIN aiosms_campaigns AS c ON c.id = m.campaign "
        "WHERE m.state = 'pending' AND m.id <= c.claimed_to "
        "AND NOT EXISTS (SELECT 1 FROM aiosms_outcomes AS o WHERE o.id = m.id)"
    )
    for campaign, on_the_wire in live.items():
        for chunk in chunks(sorted(on_the_wire)):
            db.execute(
                f"DELETE FROM aiosms_returned WHERE campaign = ? AND id IN ({marks(len(chunk))})",
                (campaign, *chunk),
            )
    recount(db)


def tally(db: sqlite3.Connection, campaign: int, changes: Mapping[str, int]) -> None:
    """Add ``changes`` (rows per state, negative for rows that left it) to the counts.

    Called in the transaction of every statement that moves rows between states, with
    the rows it moved, so the counts stay exact.
    """
    values = [(campaign, state, n) for state, n in changes.items() if n]
    if values:
        db.executemany(
            "INSERT INTO aiosms_counts (campaign, state, n) VALUES (?, ?, ?) "
            "ON CONFLICT (campaign, state) DO UPDATE SET n = n + excluded.n",
            values,
        )


def recount(db: sqlite3.Connection, campaign: int | None = None) -> None:
    """Count a campaign's rows per state afresh, or every campaign's (``None``): one pass
    over the rows and the records."""
    expand_packets(db, campaign, recounting=True)
    of = "" if campaign is None else "AND campaign = ?"
    params: tuple[int, ...] = () if campaign is None else (campaign,)
    db.execute(f"DELETE FROM aiosms_counts WHERE 1 {of}", params)
    db.execute(
        "INSERT INTO aiosms_counts (campaign, state, n) SELECT m.campaign, "
        "COALESCE(o.state, m.state), COUNT(*) FROM aiosms_messages AS m "
        f"LEFT JOIN aiosms_outcomes AS o ON o.id = m.id WHERE 1 {of.replace('AND ', 'AND +m.')} "
        "GROUP BY 1, 2",
        params,
    )
    # Claimed and sending rows are pending rows: their records say how many.
    held: dict[int, dict[str, int]] = {}
    for state, query in (
        ("claimed", f"SELECT campaign, SUM(remaining) FROM aiosms_claims WHERE 1 {of}"),
        (
            "sending",
            f"SELECT campaign, SUM(unsettled) FROM aiosms_attempts WHERE unsettled > 0 {of}",
        ),
    ):
        for owner, n in db.execute(f"{query} GROUP BY campaign", params).fetchall():
            held.setdefault(owner, {"pending": 0})[state] = n
            held[owner]["pending"] -= n
    for owner, changes in held.items():
        tally(db, owner, changes)


# A packet record's accepted outcomes, `[[id, message_id, parts, cost, delivery], …]`, as
# rows of their own: SQLite reads the JSON itself where it has its JSON functions.
_EXPAND = (
    "INSERT OR IGNORE INTO aiosms_outcomes (id, state, message_id, parts, cost, delivery, "
    "campaign, packet, settled_at) SELECT json_extract(j.value, '$[0]'), 'accepted', "
    "json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), "
    "json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), a.campaign, a.id, "
    "a.settled_at FROM aiosms_attempts AS a, json_each(a.accepted) AS j "
    "WHERE a.campaign = ? AND a.accepted IS NOT NULL"
)
_EXPAND_ROW = (
    "INSERT OR IGNORE INTO aiosms_outcomes (id, state, message_id, parts, cost, delivery, "
    "campaign, packet, settled_at) VALUES (?, 'accepted', ?, ?, ?, ?, ?, ?, ?)"
)


def expand_packets(
    db: sqlite3.Connection, campaign: int | None = None, *, recounting: bool = False
) -> None:
    """Turn the accepted outcomes packet records keep (schema 5) into rows of
    ``aiosms_outcomes``, for one campaign or every one (``None``).

    Run inside the caller's transaction, before it reads or changes outcomes. The
    counts already include these rows; if one of them has an outcome already (which
    only a broken fence could cause) the older outcome stays and the campaign is
    counted afresh.
    """
    if campaign is None:
        owners = [c for (c,) in db.execute(_PACKED_CAMPAIGNS).fetchall()]
    else:
        owners = [campaign]
    for owner in owners:
        found = _expand_campaign(db, owner)
        if found is None:
            continue
        db.execute(
            "UPDATE aiosms_attempts SET accepted = NULL, accepted_parts = NULL, "
            "accepted_cost = NULL WHERE campaign = ? AND accepted IS NOT NULL",
            (owner,),
        )
        held, inserted = found
        # (A recount that expands first counts right after.)
        if inserted != held and not recounting:
            recount(db, owner)


_PACKED_CAMPAIGNS = "SELECT DISTINCT campaign FROM aiosms_attempts WHERE accepted IS NOT NULL"


def _expand_campaign(db: sqlite3.Connection, campaign: int) -> tuple[int, int] | None:
    """Insert the rows one campaign's packet records keep: how many they hold and how
    many were inserted (fewer if some had an outcome), or None if they hold none."""
    before = db.total_changes
    if json_functions():
        (held,) = db.execute(
            "SELECT SUM(json_array_length(accepted)) FROM aiosms_attempts "
            "WHERE campaign = ? AND accepted IS NOT NULL",
            (campaign,),
        ).fetchone()
        if held is None:
            return None
        db.execute(_EXPAND, (campaign,))
        return int(held), db.total_changes - before
    packets = db.execute(
        "SELECT id FROM aiosms_attempts WHERE campaign = ? AND accepted IS NOT NULL",
        (campaign,),
    ).fetchall()
    if not packets:
        return None
    held = 0
    for (packet,) in packets:
        # One record at a time: a million rows' worth is never in memory at once.
        settled_at, accepted = db.execute(
            "SELECT settled_at, accepted FROM aiosms_attempts WHERE id = ?", (packet,)
        ).fetchone()
        carried = json.loads(accepted)
        held += len(carried)
        db.executemany(_EXPAND_ROW, [(*c, campaign, packet, settled_at) for c in carried])
    return held, db.total_changes - before


def in_snapshot(db: sqlite3.Connection, read: Callable[[], _T]) -> _T:
    """``read()`` in one read transaction: its statements see the same state."""
    db.execute("BEGIN")
    try:
        return read()
    finally:
        # (An error SQLite rolled back by itself has ended the transaction already.)
        if db.in_transaction:
            db.execute("COMMIT")


def with_outcomes(db: sqlite3.Connection, campaign: int, read: Callable[[], _T]) -> _T:
    """``read()`` in one transaction that sees every outcome of ``campaign`` as a row.

    Where no packet record keeps accepted outcomes (any campaign not running) that is
    a plain read; otherwise the records are expanded first, under the write lock.
    """

    def read_unless_packed() -> tuple[_T] | None:
        packed = db.execute(
            "SELECT 1 FROM aiosms_attempts WHERE campaign = ? AND accepted IS NOT NULL LIMIT 1",
            (campaign,),
        ).fetchone()
        return None if packed else (read(),)

    done = in_snapshot(db, read_unless_packed)
    if done is not None:
        return done[0]
    with Transaction(db):
        expand_packets(db, campaign)
        return read()


@functools.cache
def json_functions() -> bool:
    """Whether this SQLite has its JSON functions (built in since 3.38, an option before)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("SELECT json_extract('[1]', '$[0]') FROM json_each('[]')")
        except sqlite3.OperationalError:
            return False
    return True


def campaign_by_name(db: sqlite3.Connection, name: str) -> CampaignInfo | None:
    """The campaign called ``name``, or None."""
    row = db.execute(
        f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else campaign_info(row)


def set_campaign_state(
    db: sqlite3.Connection, campaign: int, state: str, reason: str | None
) -> None:
    """Mark the campaign ``state`` with ``reason``, logged as an event."""
    db.execute(
        "UPDATE aiosms_campaigns SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
        (state, reason, time.time(), campaign),
    )
    log_event(db, campaign, state, reason)


def log_event(db: sqlite3.Connection, campaign: int | None, kind: str, detail: str | None) -> None:
    """Append an event to the campaign's log (``aiosms_events``)."""
    db.execute(
        "INSERT INTO aiosms_events (campaign, at, kind, detail) VALUES (?, ?, ?, ?)",
        (campaign, time.time(), kind, detail),
    )
