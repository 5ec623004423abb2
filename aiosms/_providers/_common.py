"""Small pieces both adapters (and the Batcher) need: receipts for failures, input checks."""

from __future__ import annotations

from typing import TypeGuard

from aiosms._errors import (
    AccountError,
    AuthenticationError,
    InsufficientFundsError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import DeliveryState, Message, Receipt

#: Failures that doom every later message of the same account: after one, a
#: batch of sends stops instead of firing requests that cannot succeed.
ACCOUNT_LEVEL = (AuthenticationError, AccountError, InsufficientFundsError)

#: HTTP statuses to a send that mean the server refused the request before any
#: gateway logic ran (wrong credentials at a proxy, a wrong path or method): the
#: message was not sent, and no later message to the same place will be either.
REFUSED_STATUSES = frozenset({401, 403, 404, 405})


def stops_the_flow(error: SmsError | None) -> TypeGuard[SmsError]:
    """Whether a send's failure dooms every later send of the same client.

    True for account-level refusals (authentication, blocked account, funds) and for
    an HTTP refusal of the request itself (a typo in ``base_url`` gives 404 to all).
    """
    if isinstance(error, ACCOUNT_LEVEL):
        return True
    return isinstance(error, TransportError) and error.status_code in REFUSED_STATUSES


def failed(message: Message, error: SmsError) -> Receipt:
    """A receipt for a message that did not get a gateway answer of its own."""
    state = DeliveryState.UNKNOWN if error.may_have_been_sent else DeliveryState.REJECTED
    return Receipt(message, None, state, error)


def not_sent(cause: SmsError) -> SmsError:
    """A copy of an account-level refusal for a message that was never sent because of it."""
    error = cause.clone()
    error.may_have_been_sent = False
    return error


def require_message(message: object) -> None:
    if not isinstance(message, Message):
        raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")


def require_id(message_id: object) -> str:
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValidationError("message_id", "must be a non-empty string")
    return message_id
