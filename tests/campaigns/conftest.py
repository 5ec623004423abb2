"""Fixtures for the campaign tests: a journal per backend, on a real file or database.

``journal`` is parametrised over the backends: every journal test runs against
SQLite (a file in tmp_path) and PostgreSQL (a fresh database in a throwaway
cluster started once per session).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from postgres_support import Cluster, running_cluster

from aiosms.campaigns import Journal, PostgresJournal, SqliteJournal

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster on a Unix socket for the whole session, stopped at its end."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_conninfo(pg_cluster: Cluster) -> str:
    """The conninfo of a fresh, empty database."""
    return pg_cluster.new_database()


@pytest.fixture(params=BACKENDS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    """A fresh, empty journal of each backend."""
    opened: Journal
    if request.param == "sqlite":
        opened = SqliteJournal(tmp_path / "campaigns.db")
    else:
        opened = PostgresJournal(request.getfixturevalue("pg_conninfo"))
    try:
        yield opened
    finally:
        await opened.aclose()
