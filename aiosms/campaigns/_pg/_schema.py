"""The PostgreSQL journal's tables: created, or upgraded, by aiosms itself.

The schema's version is recorded in ``aiosms_meta``; every table is prefixed
``aiosms_`` so the journal may live in the application's own database. Concurrent
first users take turns on an advisory lock instead of racing to create it.
"""

from __future__ import annotations

from aiosms.campaigns._pg._sql import Cursor, one

__all__ = ["SCHEMA_VERSION", "ensure_schema", "schema_version"]

SCHEMA_VERSION = 1
#: Key of the transaction-level advisory lock held while the schema is created or
#: upgraded ("aiosms" in ASCII), so concurrent first users do not race.
_SCHEMA_LOCK = 0x6169_6F73_6D73

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


def ensure_schema(db: Cursor) -> None:
    """Create or upgrade the ``aiosms_*`` tables, inside the cursor's transaction.

    Cheap when the schema is current (one query). Otherwise a transaction-level
    advisory lock makes concurrent first users take turns; it ends with the
    transaction.
    """
    if schema_version(db) == SCHEMA_VERSION:
        return
    db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    found = schema_version(db)
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


def schema_version(db: Cursor) -> int | None:
    """The version recorded in the database, or None where there is no schema yet."""
    db.execute("SELECT to_regclass('aiosms_meta') IS NOT NULL")
    if not one(db)[0]:
        return None
    db.execute("SELECT value FROM aiosms_meta WHERE key = 'schema_version'")
    found = db.fetchone()
    return None if found is None else int(found[0])
