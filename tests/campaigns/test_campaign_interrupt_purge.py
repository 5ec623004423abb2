"""Campaign.interrupt (a clean stop, as on SIGTERM), Journal.purge_campaigns and settled_since."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, CampaignInfo, Journal, NewRow, SqliteJournal
from aiosms.testing import FakeMySms, Fault

pytestmark = pytest.mark.anyio


def rows(count: int) -> list[Message]:
    return [Message(to=f"7911{i:07d}", text=f"Sale {i}", key=f"row-{i}") for i in range(count)]


async def test_interrupt_settles_the_packets_on_the_wire_and_releases_the_rest(
    journal: Journal,
) -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    fake.faults.add(Fault.latency(0.1), times=100, endpoint="send")
    campaign = await Campaign.create(journal, "c", rows(200))
    async with fake.client(sender="MyShop") as sms:
        async with anyio.create_task_group() as tg:
            summaries = []

            async def go() -> None:
                summaries.append(await campaign.run(sms, packet_size=10, max_concurrency=2))

            tg.start_soon(go)
            with anyio.fail_after(20):
                while len(fake.ledger) < 10:
                    await anyio.sleep(0.01)
            campaign.interrupt("stop, please")
        (summary,) = summaries
        assert summary.state == "interrupted"
        assert summary.reason == "stop, please"
        counts = await campaign.counts()
        assert counts["claimed"] == counts["sending"] == counts["unknown"] == 0
        assert counts["accepted"] == len(fake.ledger) < 200
        assert counts["pending"] == 200 - len(fake.ledger)
        # The next run starts afresh and sends the rest, once each.
        fake.faults.clear()
        again = await campaign.run(sms, packet_size=50)
    assert again.state == "done"
    assert again.counts["accepted"] == 200
    assert max(Counter(e.phone for e in fake.ledger).values()) == 1


class HeldReads(SqliteJournal):
    """The real journal, whose reads of the campaign wait, once held, until let go."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.held = False
        self.reading = anyio.Event()
        self.let_go = anyio.Event()

    async def get_campaign(self, name: str) -> CampaignInfo | None:
        if self.held:
            self.reading.set()
            await self.let_go.wait()
        return await super().get_campaign(name)


async def test_an_interrupt_while_run_reads_the_campaign_stops_it_before_any_claim(
    tmp_path: Path,
) -> None:
    journal = HeldReads(tmp_path / "campaigns.db")
    fake = FakeMySms(balance=Decimal(10**6))
    try:
        campaign = await Campaign.create(journal, "c", rows(50))
        journal.held = True
        summaries = []
        async with fake.client(sender="MyShop") as sms, anyio.create_task_group() as tg:

            async def go() -> None:
                summaries.append(await campaign.run(sms, packet_size=10))

            tg.start_soon(go)
            with anyio.fail_after(10):
                await journal.reading.wait()
            # The signal comes while run() awaits its first read, before any pass.
            campaign.interrupt("stop, please")
            journal.let_go.set()
        (summary,) = summaries
        assert (summary.state, summary.reason, summary.sent) == ("interrupted", "stop, please", 0)
        assert fake.ledger == []
        assert (await campaign.counts())["pending"] == 50
    finally:
        await journal.aclose()


def new_row(key: str, state: str = "pending") -> NewRow:
    return NewRow(key, "79110000001", "hi", None, None, None, 1, state, None)


async def test_purge_deletes_old_campaigns_but_never_one_with_rows_in_flight(
    journal: Journal,
) -> None:
    idle = await journal.create_campaign("idle", {})
    busy = await journal.create_campaign("busy", {})
    await journal.import_rows(idle.id, [new_row("a")], dedupe=False)
    await journal.import_rows(busy.id, [new_row("b")], dedupe=False)
    claim = await journal.claim(busy.id, "worker", 10, 60.0, None)
    assert len(claim.rows) == 1
    assert await journal.purge_campaigns(time.time() - 3600) == []
    assert await journal.purge_campaigns(time.time() + 1) == ["idle"]
    assert [c.name for c in await journal.list_campaigns()] == ["busy"]
    assert sum((await journal.counts(idle.id)).values()) == 0
    assert (await journal.counts(busy.id))["claimed"] == 1


async def test_settled_since_counts_rows_settled_after_a_time(journal: Journal) -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    campaign = await Campaign.create(journal, "rate", rows(5))
    before = time.time()
    async with fake.client(sender="MyShop") as sms:
        await campaign.run(sms)
    assert await journal.settled_since(campaign.id, before - 1) == 5
    assert await journal.settled_since(campaign.id, time.time() + 1) == 0
