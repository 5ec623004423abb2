"""Fixtures for the campaign tests: a journal per backend, on a real file or database.

``journal`` is parametrised over the backends; a backend added later (PostgreSQL)
joins ``BACKENDS`` and every journal test runs against it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiosms.campaigns import Journal, SqliteJournal

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    """A fresh, empty journal of each backend."""
    assert request.param == "sqlite"
    opened = SqliteJournal(tmp_path / "campaigns.db")
    try:
        yield opened
    finally:
        await opened.aclose()
