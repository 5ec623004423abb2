"""The exception tree of aiosms and nothing else.

Every error says whether the message(s) it concerns may have reached the gateway
(``may_have_been_sent``): that single bit is what a caller needs to decide between
"safe to send again" and "find out first". Which gateway code maps to which class
lives in each provider's code table, not here.

::

    SmsError                      .may_have_been_sent
    ├── ValidationError           bad input, raised before any request
    ├── ClosedError               closed, or bound to another event loop; nothing was sent
    ├── TransportError            network or HTTP failure (on a send: provably unsent only)
    ├── DeliveryUnknownError      a send may have reached the gateway; result unknown
    ├── ProtocolError             an unparseable reply to a read
    └── ProviderError             the gateway said no: .provider, .code, .text
        ├── AuthenticationError
        ├── AccountError
        ├── InsufficientFundsError
        ├── RecipientError
        ├── BlacklistedError
        ├── SenderError
        ├── ContentError
        ├── MessageNotFoundError
        ├── ScheduleError
        ├── RequestError
        └── GatewayError
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aiosms._models import Message

_E = TypeVar("_E", bound="SmsError")

__all__ = [
    "AccountError",
    "AuthenticationError",
    "BlacklistedError",
    "ClosedError",
    "ContentError",
    "DeliveryUnknownError",
    "GatewayError",
    "InsufficientFundsError",
    "MessageNotFoundError",
    "ProtocolError",
    "ProviderError",
    "RecipientError",
    "RequestError",
    "ScheduleError",
    "SenderError",
    "SmsError",
    "TransportError",
    "ValidationError",
]


class SmsError(Exception):
    """Base of every aiosms error.

    ``may_have_been_sent`` is True only where the message may have reached the
    gateway; when it is False, sending the same message again cannot duplicate it.
    """

    may_have_been_sent: bool = False

    def __init__(self, message: str, *, may_have_been_sent: bool | None = None) -> None:
        super().__init__(message)
        if may_have_been_sent is not None:
            self.may_have_been_sent = may_have_been_sent

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors defeat Exception's default pickling; rebuild from
        # the attributes instead, so errors cross process boundaries (worker pools).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def clone(self: _E) -> _E:
        """A copy with no traceback, so each message of a batch owns its own error."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        if "__notes__" in self.__dict__:
            # Notes are a list: the twin gets its own, or add_note would touch both.
            twin.__dict__["__notes__"] = list(self.__dict__["__notes__"])
        twin.args = self.args
        return twin


class ValidationError(SmsError, ValueError):
    """Bad input, raised before any request is made.

    ``field`` names what was wrong (``"to"``, ``"sender"``, ``"text"``, ``"at"``, ``"ttl"``,
    or an option's name) and ``rule`` says what it must be. ``key`` is the ``key`` of
    the message concerned, where it is known (None otherwise), so a bad row of a
    campaign can be found::

        >>> import aiosms
        >>> try:
        ...     aiosms.Message(to="12", text="hi", key="row-7")
        ... except aiosms.ValidationError as e:
        ...     print(e.field, e.key)
        to row-7
    """

    def __init__(self, field: str, rule: str, *, key: Any = None) -> None:
        super().__init__(_describe(field, rule, key), may_have_been_sent=False)
        self.field = field
        self.rule = rule
        self.key = key
        # Set where a Message could not be built: what it was given, held unsendable,
        # so a receipt can carry the row it came from.
        self._message: Message | None = None

    def _for_key(self, key: Any) -> None:
        """Name the message's key, unless the error names one already."""
        if key is not None and self.key is None:
            self.key = key
            self.args = (_describe(self.field, self.rule, key),)


def _describe(field: str, rule: str, key: Any) -> str:
    # reprlib keeps a huge key (a whole row, say) from swamping the message.
    return f"{field}: {rule}" if key is None else f"{field}: {rule} (key={reprlib.repr(key)})"


class ClosedError(SmsError, RuntimeError):
    """The client or Batcher is closed (or closing), so nothing was sent.

    Also raised when a client is used from another event loop than the one it was
    first used in (its connections belong to that loop), before any byte is written.
    Also a ``RuntimeError``: using a closed object is a programming error, but a
    message refused this way is certainly not sent (``may_have_been_sent`` is False).
    """


class TransportError(SmsError):
    """The request failed in the network or with an HTTP error, after the allowed retries.

    On a send it is raised only where the request provably never reached the gateway,
    or where the server refused it before any gateway logic (HTTP 401, 403, 404, 405, and
    429 after the retries): ``may_have_been_sent`` is False. ``kind`` is the name of the
    original failure (``"ConnectError"``, ``"ReadTimeout"``, ``"HTTP 503"`` …) and the
    message names the host and the reason ("connection refused", "DNS lookup failed" …);
    the original exception text is never kept, since it may carry a URL with a password
    in it.
    """

    def __init__(
        self, message: str, *, kind: str, status_code: int | None = None, may_have_been_sent: bool
    ) -> None:
        super().__init__(message, may_have_been_sent=may_have_been_sent)
        self.kind = kind
        self.status_code = status_code


class DeliveryUnknownError(SmsError):
    """A send may have reached the gateway, and its result is unknown.

    Raised on a read or write timeout or reset after the request left (the request's
    overall deadline included), an HTTP 5xx or a 4xx other than 401, 403, 404, 405 and
    429, an unparseable reply or one larger than ``MAX_REPLY_BYTES``, a packet reply of
    the wrong length, a gateway internal error in reply to a send, or any unexpected
    exception from a transport. aiosms never resends such a message by itself: neither
    gateway can look a message up without its id. ``messages`` holds what was in the
    request.
    """

    may_have_been_sent = True

    def __init__(self, message: str, *, messages: Sequence[Message] = (), kind: str = "") -> None:
        super().__init__(message, may_have_been_sent=True)
        self.messages: tuple[Message, ...] = tuple(messages)
        self.kind = kind


class ProtocolError(SmsError):
    """The gateway's reply to a read (status, balance, profile) could not be understood
    (malformed, or larger than ``MAX_REPLY_BYTES``)."""


class ProviderError(SmsError):
    """The gateway answered, and said no.

    ``provider`` is ``"my-sms"`` or ``"1000sms"``, ``code`` the documented number as an int,
    ``text`` the gateway's own words (or the documented description).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str,
        code: int,
        text: str = "",
        may_have_been_sent: bool = False,
        transient: bool = False,
    ) -> None:
        super().__init__(
            message or f"{provider} error {code}: {text}".rstrip(": "),
            may_have_been_sent=may_have_been_sent,
        )
        self.provider = provider
        self.code = code
        self.text = text
        #: The gateway said it failed on its side; a read may be tried again.
        self.transient = transient


class AuthenticationError(ProviderError):
    """The gateway refused the credentials (my-sms -1; 1000sms 2, 602 user, 604)."""


class AccountError(ProviderError):
    """The account is blocked or not set up for sending (1000sms 605, 609-615)."""


class InsufficientFundsError(ProviderError):
    """Not enough money on the account (my-sms -13; 1000sms 623)."""


class RecipientError(ProviderError):
    """The recipient number was refused (my-sms -12; 1000sms 617, 619)."""


class BlacklistedError(ProviderError):
    """The recipient is on a blacklist (1000sms 618, 622)."""


class SenderError(ProviderError):
    """The sender name was refused (my-sms -11; 1000sms 607, 608, 616, 620, 621)."""


class ContentError(ProviderError):
    """The text holds forbidden words (1000sms 624)."""


class MessageNotFoundError(ProviderError):
    """No message with that id (my-sms -10; 1000sms 1, 602 SMS, 603)."""


class ScheduleError(ProviderError):
    """The gateway refused the scheduled date (my-sms -15) or the TTL (my-sms -16)."""


class RequestError(ProviderError):
    """The gateway says required parameters are missing (1000sms 7)."""


class GatewayError(ProviderError):
    """The gateway answered that it did not do it (my-sms -14, -50..-52; 1000sms 99, 501, 699)."""


def _rebuild(cls: type[SmsError], args: tuple[object, ...], state: dict[str, object]) -> SmsError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error
