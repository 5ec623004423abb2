"""Campaign.run when the Batcher refuses messages before its ``before_send`` hook runs
(a client that cannot send them at all, such as my-sms with no sender anywhere): the
campaign pauses with the reason instead of claiming its way through every row.

Real journals (SQLite in tmp_path, PostgreSQL), the in-process fake my-sms, asyncio
and trio; the fake's ledger is the truth about what was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, Journal, PostgresJournal, SqliteJournal
from aiosms.campaigns._models import Claim
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio

PLENTY = Decimal(10**9)


@pytest.fixture(params=["sqlite", "postgres"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "sqlite":
        opened: Journal = SqliteJournal(tmp_path / "campaigns.db")
    else:
        opened = PostgresJournal(request.getfixturevalue("pg_conninfo"))
    async with opened:
        yield opened


def messages(count: int) -> list[Message]:
    return [Message(to=f"7911{i:07d}", text=f"Sale {i}", key=f"row-{i}") for i in range(count)]


def count_claims(journal: Journal) -> list[int]:
    """Record how many rows each claim of ``journal`` hands out."""
    claimed: list[int] = []
    claim = journal.claim

    async def counting(
        campaign: int, owner: str, limit: int, lease: float, budget: int | None
    ) -> Claim:
        result = await claim(campaign, owner, limit, lease, budget)
        claimed.append(len(result.rows))
        return result

    journal.claim = counting  # type: ignore[method-assign]
    return claimed


async def test_a_client_without_a_sender_pauses_the_campaign_and_claims_no_further(
    journal: Journal,
) -> None:
    fake = FakeMySms(balance=PLENTY)
    claimed = count_claims(journal)
    campaign = await Campaign.create(journal, "no-sender", messages(200))
    async with fake.client() as sms:
        summary = await campaign.run(sms, packet_size=5, claim_packets=2)
    assert fake.ledger == []
    assert (summary.state, summary.sent) == ("paused", 0)
    assert "ValidationError" in (summary.reason or "")
    assert "sender" in (summary.reason or "")
    # At most the claim that met the refusal and the one already queued behind it.
    assert sum(claimed) <= 20
    assert (summary.counts["pending"], summary.counts["claimed"]) == (200, 0)
    assert summary.counts["rejected"] == summary.counts["unknown"] == 0


async def test_after_such_a_pause_a_fixed_client_sends_every_row_once(journal: Journal) -> None:
    fake = FakeMySms(balance=PLENTY)
    campaign = await Campaign.create(journal, "fixed-later", messages(30))
    async with fake.client() as sms:
        paused = await campaign.run(sms, packet_size=5)
    assert paused.paused
    await campaign.resume()
    async with fake.client(sender="MyShop") as sms:
        done = await campaign.run(sms, packet_size=5)
    assert (done.state, done.counts["accepted"]) == ("done", 30)
    assert sorted(entry.phone for entry in fake.ledger) == [f"7911{i:07d}" for i in range(30)]
