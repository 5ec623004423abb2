"""The PostgreSQL journal's session: one dedicated connection, and the rules for
running one journal call on it as one transaction.

A call runs again only where the server says it did not happen: rolled back for a
deadlock or a serialization failure, or cut off with its session (the process
stalled past ``idle_in_transaction_session_timeout``, or the connection was lost)
before it committed. Whether a COMMIT whose reply was lost did commit is the
server's to say (``txid_status``, asked on a new connection); a call that did is
not run again, and its result stands. Blocking: the journal runs it in a worker
thread. The connection string is never shown with its password.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aiosms._errors import ValidationError
from aiosms.campaigns._pg._schema import ensure_schema
from aiosms.campaigns._pg._sql import Cursor, one

__all__ = ["DEFAULT_STALL", "Session", "masked_conninfo", "stall_limit"]

logger = logging.getLogger("aiosms.campaigns")

#: Seconds a session may stall inside one of the journal's transactions before the
#: server ends it (at most; a run's heartbeats lower it to half its lease).
DEFAULT_STALL = 5.0
#: Runs of one journal call: a transaction the server rolled back runs again.
_ATTEMPTS = 3
#: The server rolled the transaction back (two workers' claims and reaping crossed):
#: nothing of it happened.
_ROLLED_BACK = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
#: The session ended, maybe inside the transaction, maybe during its COMMIT.
_SESSION_ENDED = (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout)
_T = TypeVar("_T")


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


def stall_limit(seconds: float) -> int:
    """``idle_in_transaction_session_timeout`` in ms: ``seconds``, at most DEFAULT_STALL.

    The journal's transactions never wait on anything but the database between their
    statements (milliseconds), so a session idle in one this long is a stalled process.
    """
    return max(200, int(min(seconds, DEFAULT_STALL) * 1000))


class Session:
    """One connection to the journal's database, opened on first use and again after
    it was lost, used by one call at a time.

    ``conninfo`` is libpq's own; ``masked`` is how it may be shown.
    """

    def __init__(self, conninfo: str, *, connect_timeout: float) -> None:
        self.masked = masked_conninfo(conninfo)
        self.connect_timeout = connect_timeout
        self._conninfo = conninfo
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        #: Milliseconds a session may stall inside a transaction: wanted, and as set
        #: on the open connection.
        self._stall_ms = stall_limit(DEFAULT_STALL)
        self._stall_set: int | None = None
        self._closed = False

    def limit_stall(self, seconds: float) -> None:
        """From the next call on, the server ends the session once it has stalled
        inside a transaction for ``seconds`` (at most DEFAULT_STALL)."""
        self._stall_ms = stall_limit(seconds)

    def run(self, function: Callable[[Cursor], _T]) -> _T:
        """``function``'s result, run in one transaction (again only where the server
        says it did not happen). Blocking."""
        with self._lock:
            for attempt in range(1, _ATTEMPTS + 1):
                last = attempt == _ATTEMPTS
                connection = self._connected()
                xid: int | None = None
                committing = False
                try:
                    self._set_stall_limit(connection)
                    with connection.transaction(), connection.cursor() as cursor:
                        # The transaction's id, to ask the server after a lost COMMIT.
                        xid = int(one(cursor.execute("SELECT txid_current()"))[0])
                        result = function(cursor)
                        committing = True
                    return result
                except _ROLLED_BACK:
                    if last:
                        raise
                except _SESSION_ENDED:
                    if not connection.closed:
                        raise
                    self._connection = None
                    if committing and xid is not None:
                        status = self._status(xid)
                        if status == "committed":
                            return result
                        if status != "aborted":
                            # Still in progress there, or forgotten: nobody can say.
                            raise
                    if last:
                        raise
                    # Its fences (owner, epoch, lease) decide again what it may do.
                    logger.warning("the journal's session ended inside a transaction: reconnecting")
            raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection (blocking; harmless twice). No call runs after."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connected(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise RuntimeError("the journal is closed")
        if self._connection is None or self._connection.closed:
            return self._open()
        return self._connection

    def _set_stall_limit(self, connection: psycopg.Connection[Any]) -> None:
        if self._stall_set != self._stall_ms:
            # Set for the session, outside any transaction, so no rollback undoes it.
            connection.execute(f"SET idle_in_transaction_session_timeout = {self._stall_ms}")
            self._stall_set = self._stall_ms

    def _status(self, xid: int) -> str | None:
        """``txid_status`` of ``xid`` on a new connection (its COMMIT's answer was lost),
        once it is no longer in progress, or after the stall limit and a second.

        The server may not know yet that the old session is gone: still working on its
        COMMIT (a WAL flush, a deferred check), or idle before one that never arrived,
        which the stall limit ends.
        """
        connection = self._open()
        deadline = time.monotonic() + self._stall_ms / 1000 + 1
        while True:
            found = connection.execute("SELECT txid_status(%s)", (xid,)).fetchone()
            status = None if found is None else found[0]
            if status != "in progress" or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

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
            raise ConnectionError(f"cannot open the journal {self.masked}: {message}") from None
        try:
            # Every commit waits for the WAL flush, whatever the server's default:
            # the `sending` commit is the promise that makes a crash safe.
            connection.execute("SET synchronous_commit = on")
            # A process stalled inside a transaction (SIGSTOP, a frozen VM) would hold
            # its locks (the campaign's row, its heartbeat) and stall every worker of
            # the fleet: the server ends such a session after a while instead.
            self._stall_set = None
            self._set_stall_limit(connection)
            with connection.transaction(), connection.cursor() as cursor:
                ensure_schema(cursor)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection
