"""Between journal rows and the Batcher: a claimed row as a ``Message``, a ``Receipt``
as the row's ``Outcome``.

Pure functions, run once per message sent: no I/O, no journal, no decisions beyond
reading what the receipt says (accepted, rejected, unknown, and whether a refusal
concerns the whole account).
"""

from __future__ import annotations

from datetime import datetime

from aiosms._models import DeliveryState, Message, Receipt
from aiosms.campaigns._models import ClaimedRow, Outcome
from aiosms.campaigns._refusals import ACCOUNT_REFUSAL, is_account_level

__all__ = ["message_of", "outcome_of"]

_NOT_SENT = (DeliveryState.REJECTED, DeliveryState.UNKNOWN)
#: ``state.value`` is a descriptor call on an enum; this runs once per message sent.
_VALUES = {state: state.value for state in DeliveryState}
_new = object.__new__
_set = object.__setattr__
#: A NamedTuple's own constructor is a Python call; ``tuple.__new__`` with every field
#: is not, and the accepted outcome is built once per message sent.
_new_tuple = tuple.__new__


def message_of(row: ClaimedRow) -> Message:
    """The row as a Message keyed by its row id.

    Built without running the converters again: every field was a checked
    ``Message`` field when it was imported, and this runs once per message sent.
    """
    message = _new(Message)
    _set(message, "to", row.phone)
    _set(message, "text", row.text)
    _set(message, "sender", row.sender)
    _set(message, "at", None if row.at is None else datetime.fromisoformat(row.at))
    _set(message, "ttl", row.ttl)
    _set(message, "key", row.id)
    return message


def outcome_of(receipt: Receipt) -> tuple[Outcome, str | None]:
    """The row's outcome, and the pause reason if the refusal concerns the account."""
    row_id: int = receipt.message.key
    error = receipt.error
    if error is None and receipt.state not in _NOT_SENT:
        cost = None if receipt.cost is None else str(receipt.cost)
        outcome: Outcome = _new_tuple(
            Outcome,
            (row_id, "accepted", receipt.message_id, receipt.parts, cost, None, None, None,
             _VALUES[receipt.state], None),
        )  # fmt: skip
        return outcome, None
    name = None if error is None else type(error).__name__
    code = getattr(error, "code", None)
    text = None if error is None else str(error)
    if receipt.state is DeliveryState.REJECTED:
        refusal = error is not None and is_account_level(error)
        outcome = Outcome(
            row_id, "rejected", None, receipt.parts, None, name, code, text, None,
            ACCOUNT_REFUSAL if refusal else None,
        )  # fmt: skip
        return outcome, (f"{name}: {text}" if refusal else None)
    outcome = Outcome(
        row_id, "unknown", receipt.message_id, receipt.parts, None, name, code, text, None,
        "the outcome of the request is unknown: it may have been sent",
    )  # fmt: skip
    return outcome, None
