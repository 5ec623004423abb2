"""Outcomes beside the models: receipts for failures, account-level stops, input checks.

Pure functions over models and errors, used by the clients, the send policy and
the Batcher alike; nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeGuard

from aiosms._errors import (
    AccountError,
    AuthenticationError,
    DeliveryUnknownError,
    InsufficientFundsError,
    ProtocolError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import DeliveryState, Message, Receipt, refuse_unsendable
from aiosms._segments import count_parts

logger = logging.getLogger("aiosms")

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
    if type(error) is ValidationError:
        error._for_key(message.key)
    state = DeliveryState.UNKNOWN if error.may_have_been_sent else DeliveryState.REJECTED
    return Receipt(message, None, state, error)


def fail_each(messages: Sequence[Message], error: SmsError) -> list[Receipt]:
    """One failed receipt per message, each with its own copy of ``error``."""
    return [failed(m, error.clone()) for m in messages]


def not_sent(cause: SmsError) -> SmsError:
    """A copy of an account-level refusal for a message that was never sent because of it."""
    error = cause.clone()
    error.may_have_been_sent = False
    return error


def unexpected(provider: str, messages: Sequence[Message], error: BaseException) -> list[Receipt]:
    """Receipts for a packet whose sending failed in a way nothing anticipated.

    The request may have left, so each message's outcome is unknown. Only the
    exception's type is kept: its text could hold a URL with a password in it.
    """
    name = type(error).__name__
    # The type alone, no traceback: the exception's text (shown in one) could hold a
    # URL with a password in it.
    logger.error("%s send failed unexpectedly (%s): the outcome is unknown", provider, name)
    unknown = DeliveryUnknownError(
        f"{provider} send: failed unexpectedly ({name}); the gateway may have accepted "
        "the message(s)",
        messages=messages,
        kind=name,
    )
    return fail_each(messages, unknown)


def unexpected_read(provider: str, what: str, error: BaseException) -> ProtocolError:
    """The typed error of a read that failed in a way nothing anticipated.

    Only the exception's type is kept, for the same reason as in ``unexpected``.
    """
    name = type(error).__name__
    logger.error("%s %s failed unexpectedly (%s)", provider, what, name)
    return ProtocolError(f"{provider} {what}: failed unexpectedly ({name})")


def check_parts(message: Message, max_parts: int | None) -> None:
    """Refuse a text that needs more SMS parts than the client allows."""
    if max_parts is not None:
        parts = count_parts(message.text)
        if parts > max_parts:
            raise ValidationError(
                "text", f"needs {parts} SMS parts, more than max_parts={max_parts}"
            )


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
