"""A journal call whose session ends while its COMMIT is on the server.

The journal then asks the server, on a new connection, whether the transaction
committed (``txid_status``): if it did, the call is not run again and its result
stands; if not, it runs again; while the server has not finished with it, the
journal waits. Each outcome is provoked on a real cluster of this module's own (its
configuration changes for a moment), while the COMMIT waits on the server: after the
local commit (for a synchronous standby that never answers) or before it (on a
deferred trigger waiting for a lock the test holds). The session is ended from the
server's side (``pg_terminate_backend`` from a second connection), or the client's
end of the connection is shut down, as a network reset would.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import psycopg
import pytest
from postgres_support import Cluster, running_cluster

from aiosms.campaigns import NewRow, PostgresJournal
from aiosms.campaigns._pg._sql import Cursor

pytestmark = pytest.mark.anyio

LEASE = 60.0
#: Key of the advisory lock the test holds while the COMMIT waits behind it.
COMMIT_GATE = 4242


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A cluster for this module alone: its server configuration is changed here."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def conninfo(own_cluster: Cluster) -> str:
    return own_cluster.new_database()


@pytest.fixture
async def pg(conninfo: str) -> AsyncIterator[PostgresJournal]:
    async with PostgresJournal(conninfo) as opened:
        yield opened


def admin(conninfo: str) -> psycopg.Connection[Any]:
    # Its own commits never wait for a standby, whatever the server is told.
    connection = psycopg.connect(conninfo, autocommit=True)
    connection.execute("SET synchronous_commit = local")
    return connection


async def claimed_rows(pg: PostgresJournal, count: int) -> tuple[int, list[tuple[int, int]]]:
    """A campaign of ``count`` rows, all claimed by the worker "w": (campaign, rows)."""
    info = await pg.create_campaign("c", {})
    rows = [
        NewRow(str(i), f"7911{i:07d}", "Hi", "Shop", None, None, 1, "pending", None)
        for i in range(1, count + 1)
    ]
    await pg.import_rows(info.id, rows, dedupe=True)
    await pg.heartbeat(info.id, "w", LEASE)
    claim = await pg.claim(info.id, "w", count, LEASE, None)
    return info.id, [(r.id, claim.epoch) for r in claim.rows]


def count_updates_of_messages(db: psycopg.Connection[Any]) -> None:
    """Every UPDATE statement on the rows takes a number from a sequence, which no
    rollback gives back: the count of times a journal call ran, committed or not."""
    db.execute("CREATE SEQUENCE runs")
    db.execute(
        "CREATE FUNCTION count_run() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM nextval('runs'); RETURN NULL; END $$"
    )
    db.execute(
        "CREATE TRIGGER count_run AFTER UPDATE ON aiosms_messages "
        "FOR EACH STATEMENT EXECUTE FUNCTION count_run()"
    )


def runs(db: psycopg.Connection[Any]) -> int:
    found = db.execute("SELECT last_value, is_called FROM runs").fetchone()
    assert found is not None
    return int(found[0]) if found[1] else 0


async def backend_waiting(db: psycopg.Connection[Any], wait_event: str) -> int:
    """The pid of the journal's backend, once it waits on ``wait_event`` (inside COMMIT)."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'aiosms' "
        "AND datname = current_database() AND wait_event = %s"
    )
    with anyio.fail_after(20):
        for _ in range(400):
            found = await anyio.to_thread.run_sync(
                lambda: db.execute(query, (wait_event,)).fetchall()
            )
            if found:
                break
            await anyio.sleep(0.05)
    assert len(found) == 1, f"the journal's COMMIT never waited on {wait_event}"
    return int(found[0][0])


async def terminate_when_waiting(db: psycopg.Connection[Any], wait_event: str) -> None:
    """End the journal's session from the server's side once it waits on ``wait_event``."""
    pid = await backend_waiting(db, wait_event)
    ended = await anyio.to_thread.run_sync(
        lambda: db.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
    )
    assert ended == (True,)


def gate_commits_of_messages(db: psycopg.Connection[Any]) -> None:
    """A check run at COMMIT, before the transaction is committed, that waits while the
    test holds the advisory lock ``COMMIT_GATE``."""
    db.execute(
        "CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_advisory_lock_shared({COMMIT_GATE}); "
        f"PERFORM pg_advisory_unlock_shared({COMMIT_GATE}); RETURN NULL; END $$"
    )
    db.execute(
        "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER UPDATE ON aiosms_messages "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()"
    )


async def test_a_commit_whose_reply_was_lost_is_not_run_again_and_its_result_stands(
    pg: PostgresJournal, conninfo: str
) -> None:
    campaign, rows = await claimed_rows(pg, 3)
    with admin(conninfo) as db:
        count_updates_of_messages(db)
        # A synchronous standby that never answers: every COMMIT is written locally,
        # then waits for it; ending the session there loses the COMMIT's reply.
        db.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        db.execute("SELECT pg_reload_conf()")
        changed: list[set[int]] = []
        try:
            async with anyio.create_task_group() as tg:

                async def begin_send() -> None:
                    changed.append(await pg.begin_send(campaign, "w", rows, "att-1"))

                tg.start_soon(begin_send)
                await terminate_when_waiting(db, "SyncRep")
        finally:
            db.execute("ALTER SYSTEM RESET synchronous_standby_names")
            db.execute("SELECT pg_reload_conf()")
        ran = runs(db)
    # Run again, the fence would have found the rows `sending` already and answered
    # that none may be sent: the messages would never go out.
    assert changed == [{1, 2, 3}]
    assert ran == 1
    states = {(r.state.value, r.attempt) for r in await pg.rows(campaign)}
    assert states == {("sending", "att-1")}


async def test_a_commit_the_server_never_completed_runs_again_on_a_new_connection(
    pg: PostgresJournal, conninfo: str
) -> None:
    campaign, rows = await claimed_rows(pg, 3)
    with admin(conninfo) as db, admin(conninfo) as gate:
        count_updates_of_messages(db)
        gate_commits_of_messages(db)
        gate.execute("SELECT pg_advisory_lock(%s)", (COMMIT_GATE,))
        changed: list[set[int]] = []
        async with anyio.create_task_group() as tg:

            async def begin_send() -> None:
                changed.append(await pg.begin_send(campaign, "w", rows, "att-1"))

            tg.start_soon(begin_send)
            try:
                await terminate_when_waiting(db, "advisory")
            finally:
                gate.execute("SELECT pg_advisory_unlock(%s)", (COMMIT_GATE,))
        ran = runs(db)
    assert changed == [{1, 2, 3}]
    assert ran == 2
    states = {(r.state.value, r.attempt) for r in await pg.rows(campaign)}
    assert states == {("sending", "att-1")}


async def test_a_commit_still_in_progress_when_the_connection_was_lost_is_waited_for(
    pg: PostgresJournal, conninfo: str
) -> None:
    campaign, rows = await claimed_rows(pg, 3)
    with admin(conninfo) as db, admin(conninfo) as gate:
        count_updates_of_messages(db)
        gate_commits_of_messages(db)
        gate.execute("SELECT pg_advisory_lock(%s)", (COMMIT_GATE,))
        changed: list[set[int]] = []
        async with anyio.create_task_group() as tg:

            async def begin_send() -> None:
                changed.append(await pg.begin_send(campaign, "w", rows, "att-1"))

            tg.start_soon(begin_send)
            try:
                await backend_waiting(db, "advisory")
                # The connection breaks on the client's side (a reset from the network):
                # the server, busy with the COMMIT, does not know yet, and the
                # transaction stays in progress until the gate opens.
                connection = pg._session._connection
                assert connection is not None
                with socket.socket(fileno=os.dup(connection.fileno())) as client_end:
                    client_end.shutdown(socket.SHUT_RDWR)
                await anyio.sleep(1.0)
            finally:
                gate.execute("SELECT pg_advisory_unlock(%s)", (COMMIT_GATE,))
        ran = runs(db)
    assert changed == [{1, 2, 3}]
    assert ran == 1
    states = {(r.state.value, r.attempt) for r in await pg.rows(campaign)}
    assert states == {("sending", "att-1")}


async def test_a_lost_commit_that_committed_counts_even_on_the_calls_last_run(
    pg: PostgresJournal, conninfo: str
) -> None:
    campaign, _ = await claimed_rows(pg, 2)
    runs_seen: list[int] = []

    def mark_rows(db: Cursor) -> int:
        runs_seen.append(len(runs_seen) + 1)
        if len(runs_seen) < 3:
            # What the server answers when it breaks a deadlock: rolled back, run again.
            db.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$"
            )
        db.execute("UPDATE aiosms_messages SET reason = 'marked' WHERE campaign = %s", (campaign,))
        return len(runs_seen)

    with admin(conninfo) as db:
        count_updates_of_messages(db)
        db.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        db.execute("SELECT pg_reload_conf()")
        results: list[int] = []
        try:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    results.append(await pg._call(mark_rows))

                tg.start_soon(call)
                await terminate_when_waiting(db, "SyncRep")
        finally:
            db.execute("ALTER SYSTEM RESET synchronous_standby_names")
            db.execute("SELECT pg_reload_conf()")
        ran = runs(db)
    assert (results, runs_seen, ran) == ([3], [1, 2, 3], 1)
    assert {r.reason for r in await pg.rows(campaign)} == {"marked"}
