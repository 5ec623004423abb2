"""Which gateway refusals concern the whole account rather than one message.

The one place the campaign runner decides it: such a refusal pauses the campaign
(every later message would fail the same way), and the rows it refused go back
to ``pending`` when the campaign is resumed (they certainly did not go out).
"""

from __future__ import annotations

from aiosms._errors import SmsError
from aiosms._outcomes import stops_the_flow

__all__ = ["ACCOUNT_REFUSAL", "is_account_level"]

#: The reason stored on rows refused for an account-level cause.
ACCOUNT_REFUSAL = "account-level refusal"


def is_account_level(error: SmsError) -> bool:
    """True for authentication, blocked-account and insufficient-funds refusals, and
    for an HTTP refusal of the request itself (a wrong ``base_url`` refuses them all)."""
    return stops_the_flow(error)
