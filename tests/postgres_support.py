"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a
Unix socket only (no TCP port), stopped by its own data directory at the end.

The server binaries are required, never optional: without them the PostgreSQL
journal would go untested, so the fixture fails with what to install.
As root, initdb and pg_ctl refuse to run: they run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
_names = itertools.count(1)


def find_bin(name: str) -> str | None:
    """``name`` (initdb, pg_ctl) on PATH or in Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Cluster:
    """A running cluster; ``conninfo(dbname)`` reaches it through its socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.sockets} user={SUPERUSER} dbname={dbname}"

    def new_database(self) -> str:
        """A fresh, empty database's conninfo (CREATE DATABASE is fast on an idle cluster)."""
        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.conninfo(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.conninfo(name)


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a cluster for the duration of the block; stop it (fast) whatever happens."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError(
            "the PostgreSQL server binaries (initdb, pg_ctl) are needed to test the "
            "PostgreSQL journal: install them (Debian: apt-get install postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="aiosms-pg-"))
    cluster = Cluster(root)
    cluster.sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, cluster.sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        subprocess.run(
            _as_postgres(
                [
                    initdb,
                    "-D",
                    str(cluster.data),
                    "-A",
                    "trust",
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        # fsync off: a crash of the test machine loses a throwaway cluster, nothing more;
        # synchronous_commit stays as the journal sets it, so the code path is the real one.
        options = (
            f"-k {cluster.sockets} -c listen_addresses='' -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        started = False
        try:
            subprocess.run(
                _as_postgres(
                    [
                        pg_ctl,
                        "start",
                        "-w",
                        "-t",
                        "60",
                        "-D",
                        str(cluster.data),
                        "-o",
                        options,
                        "-l",
                        str(root / "server.log"),
                    ]
                ),
                check=True,
                capture_output=True,
                timeout=90,
            )
            started = True
            yield cluster
        finally:
            if started or (cluster.data / "postmaster.pid").exists():
                subprocess.run(
                    _as_postgres([pg_ctl, "stop", "-m", "fast", "-w", "-D", str(cluster.data)]),
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
