"""The SQLite journal's own cost per message, without a gateway or an event loop.

``python -m benchmarks._journal --count 1000000`` imports COUNT rows into a fresh journal
file, then claims them 4,000 at a time and records and settles each packet of 1,000
(every row accepted), as ``Campaign.run`` does with my-sms packets, calling the
journal's functions directly in this one thread. It prints one JSON line: the thread's
CPU time per row for each call (claim, begin_send, finish) and in all, and the wall time.
A diagnostic for the ``campaign`` scenario: the part of a campaign's cost that is the
journal's, measured apart from the rest.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from aiosms.campaigns import NewRow, Outcome, SqliteJournal
from aiosms.campaigns import _sqlite_rows as rows_sql
from aiosms.campaigns import _sqlite_sending as sending_sql
from benchmarks._common import MYSMS_SENDER, TEXT, phone

CLAIM = 4000
PACKET = 1000


def measure(path: Path, count: int) -> dict[str, float]:
    journal = SqliteJournal(path)
    db = journal._run(lambda connection: connection)
    try:
        db.execute(
            "INSERT INTO aiosms_campaigns (name, settings, created_at, updated_at) "
            "VALUES ('bench', '{}', 0, 0)"
        )
        (campaign,) = db.execute("SELECT id FROM aiosms_campaigns WHERE name = 'bench'").fetchone()
        for start in range(0, count, 10_000):
            batch = [
                NewRow(str(i), phone(i), TEXT, MYSMS_SENDER, None, None, 1, "pending", None)
                for i in range(start, min(start + 10_000, count))
            ]
            rows_sql.import_rows(db, campaign, batch, False)
        spent: dict[str, float] = dict.fromkeys(("claim", "begin_send", "finish"), 0.0)
        done = 0
        started = time.perf_counter()
        while done < count:
            clock = time.thread_time()
            claim = sending_sql.claim(db, campaign, "bench", CLAIM, 600.0, None)
            spent["claim"] += time.thread_time() - clock
            if not claim.rows:
                break
            for first in range(0, len(claim.rows), PACKET):
                packet = claim.rows[first : first + PACKET]
                attempt = f"a{packet[0].id}"
                clock = time.thread_time()
                sending_sql.begin_send(
                    db, campaign, "bench", [(r.id, claim.epoch) for r in packet], attempt
                )
                spent["begin_send"] += time.thread_time() - clock
                outcomes = [
                    Outcome(r.id, "accepted", f"id-{r.id}", 1, None, None, None, None, "queued")
                    for r in packet
                ]
                clock = time.thread_time()
                sending_sql.finish(db, campaign, attempt, outcomes, [], None)
                spent["finish"] += time.thread_time() - clock
                done += len(packet)
        wall = time.perf_counter() - started
    finally:
        journal.close()
    result = {f"{name}_us": seconds / done * 1e6 for name, seconds in spent.items()}
    result["total_us"] = sum(spent.values()) / done * 1e6
    result["wall_seconds"] = wall
    result["rows"] = done
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiosms-journal-") as directory:
        print(json.dumps(measure(Path(directory) / "journal.db", args.count)), flush=True)


if __name__ == "__main__":
    main()
