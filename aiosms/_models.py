"""The public data model: messages going out, and what the gateways say back.

Frozen attrs classes with slots. ``Message`` checks what needs no gateway at
construction; gateway rules are checked when it is sent. Reprs never show a
message's text (an OTP is a secret) or a full phone number.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from aiosms import _validation as v
from aiosms._errors import ValidationError

if TYPE_CHECKING:
    from aiosms._errors import SmsError

__all__ = [
    "Balance",
    "DeliveryState",
    "Message",
    "Profile",
    "Receipt",
    "StatusReport",
    "mask_phone",
]


class DeliveryState(str, enum.Enum):
    """Where a message is, in one vocabulary for both gateways.

    REJECTED means certainly not sent (the gateway refused it, or it never left);
    UNKNOWN means it may have been sent and nobody can say.
    """

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """True for DELIVERED, UNDELIVERED and REJECTED: the state will not change."""
        return self in _FINAL

    def __str__(self) -> str:
        return self.value


_FINAL = frozenset({DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.REJECTED})
_NOT_TAKEN = (DeliveryState.REJECTED, DeliveryState.UNKNOWN)


def mask_phone(number: str | None) -> str | None:
    """Hide a number's middle digits: ``79112223333`` → ``7911*****33``."""
    if number is None:
        return None
    if len(number) <= 6:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


def _text_repr(text: str | None) -> str:
    return "None" if text is None else f"<{len(text)} chars>"


@attrs.frozen(slots=True, repr=False, init=False)
class Message:
    """One SMS to send.

    ``to`` is normalised at once (``"+7 (911) 222-33-33"`` → ``"79112223333"``);
    ``sender`` overrides the client's; ``at`` schedules it (a naive datetime is
    Moscow time); ``ttl`` goes to the gateway as is; ``key`` is your own correlation
    id, carried to the receipt and never sent. Bad input raises ``ValidationError``
    at once, with ``key`` set to this message's key.

    >>> Message(to="8 911 222-33-33", text="Code: 1234", key=42)
    Message(to='7911*****33', text=<10 chars>, sender=None, at=None, ttl=None, key=42)
    """

    to: str = attrs.field(converter=v.normalize_phone)
    text: str = attrs.field(converter=v.check_text)
    sender: str | None = attrs.field(default=None, converter=v.check_sender_type)
    at: datetime | None = attrs.field(default=None, converter=v.check_at)
    ttl: int | None = attrs.field(default=None, converter=v.check_ttl)
    key: Any = None

    def __init__(
        self,
        to: str,
        text: str,
        sender: str | None = None,
        at: datetime | None = None,
        ttl: int | None = None,
        key: Any = None,
    ) -> None:
        try:
            self.__attrs_init__(to, text, sender, at, ttl, key)
        except ValidationError as invalid:
            invalid._for_key(key)
            if invalid._message is None:
                invalid._message = _unsendable(to, text, sender, at, ttl, key)
            raise

    def __repr__(self) -> str:
        return (
            f"Message(to={mask_phone(self.to)!r}, text={_text_repr(self.text)}, "
            f"sender={self.sender!r}, at={self.at!r}, ttl={self.ttl!r}, key={self.key!r})"
        )


class _UnsendableMessage(Message):
    """What a ``Message`` was given when it refused to be built: the raw values, held
    so a REJECTED receipt can carry the row (and its key) it came from.

    It can never be sent: every way to send refuses it with its ``ValidationError``.
    Building one the normal way (``attrs.evolve`` with a corrected field, say) gives
    an ordinary, checked ``Message``.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Message:  # type: ignore[misc]
        return Message(*args, **kwargs)

    def __reduce__(self) -> tuple[object, ...]:
        return (_unsendable, (self.to, self.text, self.sender, self.at, self.ttl, self.key))

    def refusal(self) -> ValidationError:
        """The error building it raised (built again: the checks are deterministic)."""
        try:
            Message(self.to, self.text, self.sender, self.at, self.ttl, self.key)
        except ValidationError as invalid:
            return invalid.with_traceback(None)
        return ValidationError(
            "message", "was refused when it was built and cannot be sent", key=self.key
        )

    def __repr__(self) -> str:
        to = self.to
        shown_to = (
            repr(mask_phone(str(to))) if isinstance(to, (str, int)) else f"<{type(to).__name__}>"
        )
        text = self.text
        shown_text = _text_repr(text) if isinstance(text, str) else f"<{type(text).__name__}>"
        return (
            f"Message(to={shown_to}, text={shown_text}, sender={self.sender!r}, "
            f"at={self.at!r}, ttl={self.ttl!r}, key={self.key!r}, unsendable)"
        )


def _unsendable(to: Any, text: Any, sender: Any, at: Any, ttl: Any, key: Any) -> _UnsendableMessage:
    """Hold raw, unchecked values in a message that can never be sent."""
    message = object.__new__(_UnsendableMessage)
    for name, value in zip(_FIELDS, (to, text, sender, at, ttl, key), strict=True):
        object.__setattr__(message, name, value)
    return message


_FIELDS = ("to", "text", "sender", "at", "ttl", "key")


def refuse_unsendable(message: Message) -> None:
    """Raise the ``ValidationError`` of a message that was never valid."""
    if type(message) is _UnsendableMessage:
        raise message.refusal()


def unsendable_from(error: ValidationError) -> Message:
    """The unsendable message behind ``error``: what its Message was given, or only
    its key when the error did not come from building a Message."""
    held = error._message
    if held is None:
        held = _unsendable(None, None, None, None, None, error.key)
    return held


@attrs.frozen(slots=True)
class Receipt:
    """The outcome of sending one message.

    ``state`` is QUEUED/SENT/DELIVERED when the gateway took it, REJECTED when it
    certainly did not go out (``error`` says why), UNKNOWN when it may have
    (``error`` is a ``DeliveryUnknownError``). ``code`` is the gateway's raw state
    code, where it gave one; ``parts`` comes from the gateway where it says, else is
    counted locally; ``cost`` is the whole message's cost where the gateway says.
    """

    message: Message
    message_id: str | None
    state: DeliveryState
    error: SmsError | None = None
    parts: int | None = None
    cost: Decimal | None = None
    code: int | None = None
    sender: str | None = None

    @property
    def ok(self) -> bool:
        """True when the gateway accepted the message."""
        # A module-level tuple: identity first, so a member costs no comparison.
        return self.error is None and self.state not in _NOT_TAKEN


@attrs.frozen(slots=True, repr=False)
class StatusReport:
    """What the gateway says about one message it was asked about.

    ``message_id`` is the id that was asked about; ``code`` the gateway's raw state
    code and ``state_text`` its words for it. my-sms reports only the state;
    1000sms fills in the rest (``user_id`` is the id of the *account* that sent it).
    ``error`` is set by ``status_many`` for an id the gateway does not know.
    """

    message_id: str
    state: DeliveryState
    code: int | None = None
    state_text: str | None = None
    error: SmsError | None = None
    user_id: str | None = None
    sender: str | None = None
    text: str | None = None
    phone: str | None = None
    parts: int | None = None
    flash: bool | None = None
    start_time: datetime | None = None
    last_update: datetime | None = None
    price_per_part: Decimal | None = None

    @property
    def cost(self) -> Decimal | None:
        """Price per part × parts, where the gateway gave both."""
        if self.price_per_part is None or self.parts is None:
            return None
        return self.price_per_part * self.parts

    def __repr__(self) -> str:
        return (
            f"StatusReport(message_id={self.message_id!r}, state={self.state.name}, "
            f"code={self.code!r}, state_text={self.state_text!r}, error={self.error!r}, "
            f"phone={mask_phone(self.phone)!r}, text={_text_repr(self.text)}, "
            f"parts={self.parts!r}, last_update={self.last_update!r})"
        )


@attrs.frozen(slots=True)
class Balance:
    """Money on the account. my-sms names no currency (``None``)."""

    amount: Decimal
    currency: str | None = None


@attrs.frozen(slots=True)
class Profile:
    """A 1000sms account, every field ``get_profile`` documents."""

    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    credits: Decimal | None = None
    credits_used: Decimal | None = None
    credits_name: str | None = None
    currency: str | None = None
    sender: str | None = None
    referral_id: str | None = None
