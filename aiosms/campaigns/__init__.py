"""Durable campaigns: every message's state in a journal, each sent at most once.

>>> from aiosms.campaigns import Campaign, SqliteJournal
>>> journal = SqliteJournal("campaigns.db")  # doctest: +SKIP
>>> campaign = await Campaign.create(journal, "spring-sale", messages)  # doctest: +SKIP
>>> summary = await campaign.run(sms, rate=50)  # doctest: +SKIP

``PostgresJournal`` (one campaign, many machines) needs the ``aiosms[postgres]``
extra; it is imported on first use, so this package works without psycopg.

See docs/campaigns.md for the states and what they guarantee.
"""

import contextlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from aiosms.campaigns._campaign import Campaign
from aiosms.campaigns._journal import Journal
from aiosms.campaigns._models import (
    CampaignInfo,
    Claim,
    ClaimedRow,
    ImportResult,
    NewRow,
    Outcome,
    Row,
    RowState,
    Summary,
)
from aiosms.campaigns._sqlite import SqliteJournal
from aiosms.campaigns._window import Window

if _TYPE_CHECKING:
    from aiosms.campaigns._postgres import PostgresJournal

__all__ = [
    "Campaign",
    "CampaignInfo",
    "Claim",
    "ClaimedRow",
    "ImportResult",
    "Journal",
    "NewRow",
    "Outcome",
    "PostgresJournal",
    "Row",
    "RowState",
    "SqliteJournal",
    "Summary",
    "Window",
]

# Tracebacks and reprs say aiosms.campaigns.Campaign, not aiosms.campaigns._campaign.Campaign.
for _name in __all__:
    if _name == "PostgresJournal":
        continue
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("aiosms.campaigns."):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "aiosms.campaigns"
del _name, _obj


def __getattr__(name: str) -> _Any:
    # PostgresJournal needs psycopg (the aiosms[postgres] extra): imported when asked for.
    if name == "PostgresJournal":
        try:
            from aiosms.campaigns._postgres import PostgresJournal
        except ImportError as error:
            raise ImportError(
                "PostgresJournal needs psycopg: pip install 'aiosms[postgres]'"
            ) from error
        PostgresJournal.__module__ = "aiosms.campaigns"
        globals()["PostgresJournal"] = PostgresJournal
        return PostgresJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
