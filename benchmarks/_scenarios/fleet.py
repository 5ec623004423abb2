"""``fleet``: one campaign on PostgreSQL sent by 1, 2 and 4 ``aiosms worker`` processes.

The measuring lives in ``benchmarks._fleet``, which also runs on its own against any
database (``python -m benchmarks._fleet --dsn ...``). It needs PostgreSQL's server
binaries for its throwaway cluster, so it runs only when ``--only`` names it.
"""

from __future__ import annotations

from benchmarks._fleet import GOAL, fleet
from benchmarks._harness import Scenario
from benchmarks._targets import Median, Target, at_least

SCENARIO = Scenario(
    "fleet",
    fleet,
    targets=(
        Target(
            "fleet, 4 workers ÷ 1 worker (msgs/s)",
            Median("fleet/ratio"),
            at_least(GOAL),
            "msgs/s ratio",
        ),
    ),
    named_only=True,
)
