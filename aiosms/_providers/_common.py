"""Small pieces both adapters (and the Batcher) need: receipts for failures, input checks."""

from __future__ import annotations

from aiosms._errors import (
    AccountError,
    AuthenticationError,
    InsufficientFundsError,
    SmsError,
    ValidationError,
)
from aiosms._models import DeliveryState, Message, Receipt, refuse_unsendable

#: Failures that doom every later message of the same account: after one, a
#: batch of sends stops instead of firing requests that cannot succeed.
ACCOUNT_LEVEL = (AuthenticationError, AccountError, InsufficientFundsError)


def failed(message: Message, error: SmsError) -> Receipt:
    """A receipt for a message that did not get a gateway answer of its own."""
    if type(error) is ValidationError:
        error._for_key(message.key)
    state = DeliveryState.UNKNOWN if error.may_have_been_sent else DeliveryState.REJECTED
    return Receipt(message, None, state, error)


def not_sent(cause: SmsError) -> SmsError:
    """A copy of an account-level refusal for a message that was never sent because of it."""
    error = cause.clone()
    error.may_have_been_sent = False
    return error


def require_message(message: object) -> None:
    """Refuse what is not a Message, and a Message that was never valid (one held
    by a rejected receipt): it raises the ValidationError it was refused with."""
    if not isinstance(message, Message):
        raise TypeError(f"expected an aiosms.Message, got {type(message).__name__}")
    refuse_unsendable(message)


def require_id(message_id: object) -> str:
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValidationError("message_id", "must be a non-empty string")
    return message_id
