"""Durable campaigns: every message's state in a journal, each sent at most once.

>>> from aiosms.campaigns import Campaign, SqliteJournal
>>> journal = SqliteJournal("campaigns.db")  # doctest: +SKIP
>>> campaign = await Campaign.create(journal, "spring-sale", messages)  # doctest: +SKIP
>>> summary = await campaign.run(sms, rate=50)  # doctest: +SKIP

See docs/campaigns.md for the states and what they guarantee.
"""

import contextlib

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

__all__ = [
    "Campaign",
    "CampaignInfo",
    "Claim",
    "ClaimedRow",
    "ImportResult",
    "Journal",
    "NewRow",
    "Outcome",
    "Row",
    "RowState",
    "SqliteJournal",
    "Summary",
    "Window",
]

# Tracebacks and reprs say aiosms.campaigns.Campaign, not aiosms.campaigns._campaign.Campaign.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("aiosms.campaigns."):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "aiosms.campaigns"
del _name, _obj
