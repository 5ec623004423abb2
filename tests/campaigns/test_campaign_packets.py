"""A receipt as its row's outcome: the fields the journal stores, by hand."""

from __future__ import annotations

from decimal import Decimal

from aiosms import DeliveryState, Message, Receipt
from aiosms.campaigns import Outcome
from aiosms.campaigns._packets import outcome_of


def test_an_accepted_receipt_is_an_outcome_with_its_id_parts_cost_and_delivery() -> None:
    message = Message(to="79110000001", text="hi", key=7)
    receipt = Receipt(message, "msg-1", DeliveryState.QUEUED, parts=2, cost=Decimal("3.50"))
    outcome, pause = outcome_of(receipt)
    assert type(outcome) is Outcome
    assert outcome == Outcome(7, "accepted", "msg-1", 2, "3.50", None, None, None, "queued")
    assert (outcome.state, outcome.reason, pause) == ("accepted", None, None)
