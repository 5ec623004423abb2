"""Models and the error tree, per DESIGN.md "Models" and "Errors".

Reprs must never leak an OTP or a full phone number; the error tree must keep its
shape; every error says whether its message may have been sent.
"""

from __future__ import annotations

import pickle
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import pytest
from support import msg

import aiosms
from aiosms import DeliveryState

E = TypeVar("E", bound=aiosms.SmsError)

OTP_TEXT = "Your code 482913"
NUMBER = "79112223333"


def _message(**overrides: object) -> aiosms.Message:
    fields: dict[str, Any] = {"to": NUMBER, "text": OTP_TEXT}
    fields.update(overrides)
    return aiosms.Message(**fields)


# --- DeliveryState -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (DeliveryState.QUEUED, False),
        (DeliveryState.SENT, False),
        (DeliveryState.DELIVERED, True),
        (DeliveryState.UNDELIVERED, True),
        (DeliveryState.REJECTED, True),
        (DeliveryState.UNKNOWN, False),
    ],
)
def test_is_final_is_true_only_for_delivered_undelivered_and_rejected(
    state: DeliveryState, final: bool
) -> None:
    assert state.is_final is final


def test_delivery_state_has_exactly_the_six_documented_members() -> None:
    assert {state.name for state in DeliveryState} == {
        "QUEUED",
        "SENT",
        "DELIVERED",
        "UNDELIVERED",
        "REJECTED",
        "UNKNOWN",
    }


# --- Message -----------------------------------------------------------------------


def test_a_message_is_frozen() -> None:
    message = _message()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.to = "79160000000"  # type: ignore[misc]
    assert message.text == OTP_TEXT


def test_a_message_has_slots_and_no_instance_dict() -> None:
    assert not hasattr(_message(), "__dict__")


def test_a_message_keeps_the_callers_key_untouched() -> None:
    key = ("order", 17)
    assert _message(key=key).key is key


def test_a_message_key_may_be_any_object() -> None:
    row = {"row": 7}
    assert _message(key=row).key is row
    assert _message(key=42).key == 42


def test_messages_with_equal_fields_are_equal() -> None:
    assert _message(to="+7 (911) 222-33-33") == _message(to="8 911 222 33 33")


def test_message_repr_never_shows_the_text() -> None:
    assert OTP_TEXT not in repr(_message())
    assert "482913" not in repr(_message())


def test_message_repr_shows_the_texts_length() -> None:
    # "Your code 482913" is 16 characters.
    assert "16" in repr(_message())
    assert "23" in repr(_message(text="Ваш код 482913 — никому"))


def test_message_repr_masks_the_numbers_middle_digits() -> None:
    text = repr(_message())
    assert NUMBER not in text
    assert "1122233" not in text
    assert "2223" not in text


def test_message_repr_still_shows_the_sender_and_key() -> None:
    text = repr(_message(sender="MyShop", key="row-7"))
    assert "MyShop" in text
    assert "row-7" in text


# --- Receipt -------------------------------------------------------------------------


def test_receipt_repr_never_shows_the_text_or_the_full_number() -> None:
    receipt = aiosms.Receipt(
        message=_message(), message_id="e061d23c", state=DeliveryState.QUEUED, parts=1
    )
    text = repr(receipt)
    assert "482913" not in text
    assert NUMBER not in text
    assert "e061d23c" in text


def test_receipt_repr_of_a_failed_message_never_shows_the_text() -> None:
    error = aiosms.DeliveryUnknownError("read timeout after sending", messages=[_message()])
    receipt = aiosms.Receipt(
        message=_message(), message_id=None, state=DeliveryState.UNKNOWN, error=error
    )
    text = repr(receipt)
    assert "482913" not in text
    assert NUMBER not in text


def test_a_receipt_carries_its_message_and_the_messages_key() -> None:
    message = _message(key="order-17")
    receipt = aiosms.Receipt(message=message, message_id=None, state=DeliveryState.REJECTED)
    assert receipt.message is message
    assert receipt.message.key == "order-17"
    assert receipt.message_id is None


def test_a_receipt_is_frozen() -> None:
    receipt = aiosms.Receipt(message=_message(), message_id="1", state=DeliveryState.QUEUED)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        receipt.state = DeliveryState.DELIVERED  # type: ignore[misc]


# --- StatusReport ----------------------------------------------------------------------


def _report(**overrides: object) -> aiosms.StatusReport:
    fields: dict[str, object] = {
        "message_id": "12345",
        "state": DeliveryState.DELIVERED,
        "code": 1,
        "user_id": "777",
        "sender": "sms-tester",
        "text": OTP_TEXT,
        "phone": NUMBER,
        "parts": 3,
        "last_update": datetime(2025, 1, 2, 3, 4, 5),
        "price_per_part": Decimal("1.25"),
    }
    fields.update(overrides)
    return aiosms.StatusReport(**fields)  # type: ignore[arg-type]


def test_status_report_repr_never_shows_the_text_or_the_full_number() -> None:
    text = repr(_report())
    assert "482913" not in text
    assert OTP_TEXT not in text
    assert NUMBER not in text
    assert "12345" in text


def test_status_report_cost_is_price_per_part_times_parts() -> None:
    assert _report().cost == Decimal("3.75")
    assert _report(parts=1, price_per_part=Decimal("0.50")).cost == Decimal("0.50")


def test_status_report_cost_is_none_without_a_price_or_parts() -> None:
    assert _report(price_per_part=None).cost is None
    assert _report(parts=None).cost is None


def test_status_report_keeps_the_asked_id_apart_from_the_sending_users_id() -> None:
    report = _report()
    assert (report.message_id, report.user_id) == ("12345", "777")


# --- Balance ---------------------------------------------------------------------------


def test_balance_keeps_an_exact_decimal_amount_and_no_currency_by_default() -> None:
    balance = aiosms.Balance(amount=Decimal("77212.0000"))
    assert balance.amount == Decimal("77212.0000")
    assert balance.currency is None


# --- the error tree ----------------------------------------------------------------------

DIRECT_CHILDREN = [
    aiosms.ValidationError,
    aiosms.TransportError,
    aiosms.DeliveryUnknownError,
    aiosms.ProtocolError,
    aiosms.ProviderError,
]
PROVIDER_ERRORS = [
    aiosms.AuthenticationError,
    aiosms.AccountError,
    aiosms.InsufficientFundsError,
    aiosms.RecipientError,
    aiosms.BlacklistedError,
    aiosms.SenderError,
    aiosms.ContentError,
    aiosms.MessageNotFoundError,
    aiosms.ScheduleError,
    aiosms.RequestError,
    aiosms.GatewayError,
]


def test_sms_error_is_an_exception() -> None:
    assert issubclass(aiosms.SmsError, Exception)


@pytest.mark.parametrize("cls", DIRECT_CHILDREN)
def test_the_five_branches_are_direct_children_of_sms_error(cls: type[Exception]) -> None:
    assert aiosms.SmsError in cls.__bases__


def test_the_five_branches_do_not_subclass_one_another() -> None:
    for cls in DIRECT_CHILDREN:
        for other in DIRECT_CHILDREN:
            if other is not cls:
                assert not issubclass(cls, other), (cls, other)


@pytest.mark.parametrize("cls", PROVIDER_ERRORS)
def test_each_gateway_refusal_is_a_direct_child_of_provider_error(cls: type[Exception]) -> None:
    assert aiosms.ProviderError in cls.__bases__
    assert issubclass(cls, aiosms.SmsError)
    assert not issubclass(cls, aiosms.DeliveryUnknownError)
    assert not issubclass(cls, aiosms.ValidationError)


def test_the_gateway_refusals_are_distinct_classes() -> None:
    for cls in PROVIDER_ERRORS:
        for other in PROVIDER_ERRORS:
            if other is not cls:
                assert not issubclass(cls, other), (cls, other)


def test_validation_error_is_also_a_value_error() -> None:
    assert issubclass(aiosms.ValidationError, ValueError)
    with pytest.raises(ValueError, match="must be"):
        raise aiosms.ValidationError("to", "must be a phone number")


def test_validation_error_names_its_field_and_rule() -> None:
    error = aiosms.ValidationError("sender", "must be in Latin characters")
    assert (error.field, error.rule) == ("sender", "must be in Latin characters")
    assert "sender" in str(error)


def test_a_validation_error_was_never_sent() -> None:
    assert aiosms.ValidationError("to", "too short").may_have_been_sent is False


@pytest.mark.parametrize("cls", [aiosms.ProviderError, *PROVIDER_ERRORS])
def test_a_gateway_refusal_was_not_sent_by_default(cls: type[aiosms.ProviderError]) -> None:
    error = cls(provider="my-sms", code=-12, text="bad number")
    assert error.may_have_been_sent is False
    assert (error.provider, error.code, error.text) == ("my-sms", -12, "bad number")


def test_a_gateway_refusal_has_a_message_even_without_one_given() -> None:
    error = aiosms.InsufficientFundsError(provider="1000sms", code=623)
    assert "623" in str(error)


def test_a_delivery_unknown_error_may_have_been_sent_and_carries_the_messages() -> None:
    messages = [_message(key=1), _message(key=2)]
    error = aiosms.DeliveryUnknownError("reset after sending", messages=messages)
    assert error.may_have_been_sent is True
    assert error.messages == tuple(messages)


def test_delivery_unknown_error_says_may_have_been_sent_at_class_level() -> None:
    assert aiosms.DeliveryUnknownError.may_have_been_sent is True
    assert aiosms.ValidationError.may_have_been_sent is False
    assert aiosms.ProviderError.may_have_been_sent is False


def test_a_transport_error_says_what_the_caller_tells_it() -> None:
    unsent = aiosms.TransportError("refused", kind="ConnectError", may_have_been_sent=False)
    assert unsent.may_have_been_sent is False
    assert unsent.kind == "ConnectError"


def test_a_protocol_error_was_not_sent() -> None:
    assert aiosms.ProtocolError("unparseable balance").may_have_been_sent is False


def test_the_message_text_of_a_delivery_unknown_error_never_holds_the_sms_text() -> None:
    error = aiosms.DeliveryUnknownError("reset after sending", messages=[_message()])
    assert "482913" not in str(error)
    assert "482913" not in repr(error)


# --- clone -------------------------------------------------------------------------------


def _raised(error: E) -> E:
    try:
        raise error
    except aiosms.SmsError:
        return error


def _add_note(error: BaseException, note: str) -> None:
    # What BaseException.add_note does (PEP 678), spelt so that it also runs on 3.10.
    notes = getattr(error, "__notes__", None)
    if notes is None:
        notes = []
        setattr(error, "__notes__", notes)  # noqa: B010
    notes.append(note)


def test_clone_gives_a_new_error_of_the_same_class_with_the_same_attributes() -> None:
    original = _raised(aiosms.ValidationError("to", "must have 10 to 15 digits"))
    twin = original.clone()
    assert twin is not original
    assert type(twin) is aiosms.ValidationError
    assert (twin.field, twin.rule, twin.args) == (original.field, original.rule, original.args)
    assert str(twin) == str(original)
    assert twin.may_have_been_sent is False


def test_clone_has_no_traceback() -> None:
    original = _raised(aiosms.SenderError(provider="1000sms", code=608, text="bad sender"))
    assert original.__traceback__ is not None
    assert original.clone().__traceback__ is None


def test_clone_of_a_provider_error_keeps_provider_code_and_text() -> None:
    original = _raised(aiosms.GatewayError(provider="my-sms", code=-50, text="internal"))
    twin = original.clone()
    assert isinstance(twin, aiosms.GatewayError)
    assert (twin.provider, twin.code, twin.text) == ("my-sms", -50, "internal")


def test_clone_of_a_delivery_unknown_error_keeps_its_messages_and_may_have_been_sent() -> None:
    messages = [_message(key=1)]
    original = _raised(aiosms.DeliveryUnknownError("HTTP 502", messages=messages))
    twin = original.clone()
    assert isinstance(twin, aiosms.DeliveryUnknownError)
    assert twin.messages == tuple(messages)
    assert twin.may_have_been_sent is True


def test_clone_keeps_a_may_have_been_sent_given_at_construction() -> None:
    original = aiosms.ProviderError(provider="my-sms", code=-13, may_have_been_sent=True)
    assert original.clone().may_have_been_sent is True


def test_changing_a_clone_leaves_the_original_alone() -> None:
    original = _raised(aiosms.RecipientError(provider="my-sms", code=-12, text="bad number"))
    twin = original.clone()
    twin.text = "changed"
    twin.code = -1
    assert (original.text, original.code) == ("bad number", -12)


def test_a_note_added_to_a_clone_does_not_appear_on_the_original() -> None:
    original = _raised(aiosms.GatewayError(provider="1000sms", code=501))
    _add_note(original, "packet 1")
    twin = original.clone()
    _add_note(twin, "message 3 of packet 1")
    assert getattr(original, "__notes__", None) == ["packet 1"]
    assert getattr(twin, "__notes__", None) == ["packet 1", "message 3 of packet 1"]


def test_raising_a_clone_does_not_touch_the_originals_traceback() -> None:
    original = aiosms.ProtocolError("bad reply")
    twin = original.clone()
    with pytest.raises(aiosms.ProtocolError) as caught:
        raise twin
    assert caught.value is twin
    assert original.__traceback__ is None


@pytest.mark.parametrize(
    ("state", "taken"),
    [
        (DeliveryState.QUEUED, True),
        (DeliveryState.SENT, True),
        (DeliveryState.DELIVERED, True),
        (DeliveryState.UNDELIVERED, True),
        (DeliveryState.REJECTED, False),
        (DeliveryState.UNKNOWN, False),
    ],
)
def test_a_receipt_is_ok_when_the_gateway_took_the_message(
    state: DeliveryState, taken: bool
) -> None:
    message = _message()
    assert aiosms.Receipt(message, "1", state).ok is taken
    # An error always means not ok, whatever the state says.
    error = aiosms.GatewayError(provider="my-sms", code=-14, text="error sending the message")
    assert aiosms.Receipt(message, "1", state, error).ok is False


@pytest.mark.parametrize(
    "error",
    [
        aiosms.ValidationError("to", "must have 10 to 15 digits"),
        aiosms.TransportError("refused", kind="ConnectError", may_have_been_sent=False),
        aiosms.DeliveryUnknownError("lost", messages=[msg()], kind="ReadTimeout"),
        aiosms.InsufficientFundsError(provider="my-sms", code=-13, text="no money"),
        aiosms.ClosedError("closed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_survives_pickling(error: aiosms.SmsError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert copy.may_have_been_sent is error.may_have_been_sent
