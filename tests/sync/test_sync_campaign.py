"""A durable campaign run from blocking code, through a blocking client's own loop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import mysms, served

import aiosms
from aiosms import Message
from aiosms.campaigns import SqliteJournal
from aiosms.testing import FakeMySms


def rows(count: int) -> list[Message]:
    return [Message(to=f"7911{i:07d}", text=f"offer {i}", key=str(i)) for i in range(count)]


@pytest.fixture
def fake() -> FakeMySms:
    return FakeMySms(balance=10**6)


@pytest.fixture
def url(fake: FakeMySms) -> Iterator[str]:
    with served(fake) as base_url:
        yield base_url


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_campaign_runs_once_tracks_and_a_rerun_sends_nothing_again(
    fake: FakeMySms, url: str, tmp_path: Path, backend: str
) -> None:
    journal = SqliteJournal(tmp_path / "campaigns.db")
    with mysms(fake, url, backend=backend) as sms:
        campaign = aiosms.sync.Campaign.create(sms, journal, "cron", rows(30))
        first = campaign.run(packet_size=10)
        again = aiosms.sync.Campaign.open(sms, journal, "cron").run(packet_size=10)
        reports = list(campaign.track(interval=0.01, deadline=10))
        counts = campaign.counts()
    assert len(fake.ledger) == 30
    assert sorted(e.text for e in fake.ledger) == sorted(f"offer {i}" for i in range(30))
    assert counts["accepted"] == 30
    assert counts["pending"] == 0
    assert first.sent == 30
    assert again.sent == 0
    assert Counter(r.state.value for r in reports)["delivered"] == 30


def test_a_paused_campaign_sends_nothing_until_resumed(
    fake: FakeMySms, url: str, tmp_path: Path
) -> None:
    journal = SqliteJournal(tmp_path / "campaigns.db")
    with mysms(fake, url) as sms:
        campaign = aiosms.sync.Campaign.create(sms, journal, "paused", rows(5))
        campaign.pause("waiting for approval")
        campaign.run()
        assert fake.ledger == []
        campaign.resume()
        campaign.run()
        assert campaign.counts()["accepted"] == 5
    assert len(fake.ledger) == 5
