"""Campaign.interrupt (a clean stop, as on SIGTERM), Journal.purge_campaigns and settled_since."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import anyio
import pytest

from aiosms import Message
from aiosms.campaigns import Campaign, Journal, NewRow
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
