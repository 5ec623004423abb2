"""The processes of the fleet test: a fake gateway, and a campaign worker.

``python fleet_driver.py gateway LEDGER LATENCY`` serves a fake my-sms on
127.0.0.1, prints ``URL <base url>``, and when its stdin closes writes its ledger
(``[[message id, phone, sender], …]``) to LEDGER and exits.

``python fleet_driver.py worker CONNINFO CAMPAIGN URL SENDER LEASE BACKEND`` runs the
campaign through a ``PostgresJournal`` on asyncio or trio, sending as SENDER (so the
ledger says which worker sent what), and prints its summary as JSON.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import anyio
import anyio.to_thread

from aiosms.campaigns import Campaign, PostgresJournal
from aiosms.testing import FakeMySms


async def gateway(ledger: Path, latency: float) -> None:
    fake = FakeMySms(balance=Decimal(10**9), latency=latency)
    async with fake.serve() as base_url:
        print(f"URL {base_url}", flush=True)
        # The parent holds our stdin: when it closes it, the run is over.
        await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
    entries = [[e.id, e.phone, e.sender] for e in fake.ledger]
    partial = ledger.with_suffix(".partial")
    partial.write_text(json.dumps(entries))
    partial.replace(ledger)


async def worker(conninfo: str, name: str, url: str, sender: str, lease: float) -> None:
    fake = FakeMySms()
    async with PostgresJournal(conninfo) as journal:
        campaign = await Campaign.open(journal, name)
        async with fake.client(base_url=url, sender=sender) as sms:
            summary = await campaign.run(
                sms, packet_size=10, claim_packets=2, max_concurrency=1, lease=lease
            )
    print(json.dumps({"state": summary.state, "sent": summary.sent}), flush=True)


def main(argv: list[str]) -> None:
    if argv[0] == "gateway":
        anyio.run(gateway, Path(argv[1]), float(argv[2]))
    else:
        conninfo, name, url, sender, lease, backend = argv[1:7]
        anyio.run(worker, conninfo, name, url, sender, float(lease), backend=backend)


if __name__ == "__main__":
    main(sys.argv[1:])
