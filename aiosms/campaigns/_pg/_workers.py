"""The workers of a campaign in the PostgreSQL journal: heartbeats, and the reaper
that every worker runs when it claims or beats.

Every time that matters to fencing is the database's clock, ``now()``, so the
workers' own clocks may disagree. A worker lost (its heartbeat older than its lease)
may have had requests on the wire: its ``sending`` rows become ``unknown``, never
sent again; its ``claimed`` rows were provably unsent and go back in line.
"""

from __future__ import annotations

import logging
from typing import Any

from aiosms.campaigns._models import CampaignInfo
from aiosms.campaigns._pg._sql import Cursor, one, record_event
from aiosms.campaigns._rows import CAMPAIGN_COLUMNS, campaign_info

__all__ = ["heartbeat", "live_workers", "reap", "release"]

logger = logging.getLogger("aiosms.campaigns")

#: A worker is alive while its last heartbeat is younger than its lease.
_ALIVE = "w.heartbeat + w.lease * interval '1 second' >= now()"
_LOST = (
    "state = 'unknown', reason = 'worker lost', error_class = 'WorkerLost', "
    "error_text = 'the worker stopped while the message was being sent: it may have gone out', "
    "settled_at = now()"
)


def heartbeat(
    db: Cursor, campaign: int, owner: str, lease: float, host: str, pid: int
) -> CampaignInfo:
    """Record that ``owner`` (on ``host``, process ``pid``) lives, extend the lease of
    its claimed rows, reap lost workers; the campaign as it stands now."""
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
    reap(db, campaign, orphans=False)
    db.execute(f"SELECT {CAMPAIGN_COLUMNS} FROM aiosms_campaigns WHERE id = %s", (campaign,))
    return campaign_info(one(db))


def live_workers(db: Cursor, campaign: int) -> int:
    """Workers of the campaign whose heartbeat is fresh (at least 1: the caller)."""
    db.execute(
        f"SELECT COUNT(*) FROM aiosms_workers AS w WHERE w.campaign = %s AND {_ALIVE}",
        (campaign,),
    )
    return max(1, int(one(db)[0]))


def release(db: Cursor, campaign: int, owner: str) -> int:
    """``owner``'s claimed rows back to ``pending``, and its heartbeat gone; how many rows."""
    db.execute(
        "UPDATE aiosms_messages SET state = 'pending', owner = NULL, "
        "lease_until = NULL WHERE campaign = %s AND state = 'claimed' AND owner = %s",
        (campaign, owner),
    )
    released = db.rowcount
    db.execute("DELETE FROM aiosms_workers WHERE owner = %s", (owner,))
    return released


def reap(db: Cursor, campaign: int, *, orphans: bool) -> tuple[int, int]:
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
        _report(db, campaign, lost, released)
    return lost, released


def _report(db: Cursor, campaign: int, lost: int, released: int) -> None:
    record_event(db, campaign, "recover", f"{lost} sending → unknown, {released} claimed → pending")
    if lost:
        logger.warning(
            "campaign %d: %d message(s) were being sent by a worker that stopped beating: "
            "marked unknown, never resent",
            campaign,
            lost,
        )
