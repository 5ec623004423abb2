"""1000sms.ru on the wire: requests built and replies parsed, with no I/O.

A ``ThousandSmsCodec`` is the client's frozen wire configuration (format, method,
credentials behind ``Secret``, sender) and its methods are pure functions of it:
prepare a message, build a ``push_msg``, ``get_msg_report`` or ``get_profile``
request, parse each reply into models. Every call goes to the one documented URL
with ``method=`` and its arguments as form fields (POST, the default) or as the
query (GET, which puts the password in the URL). There are no packets: a request
carries one message. Every documented ``err_code`` is in ``CODES``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus, urlencode

import attrs

from aiosms import _validation as v
from aiosms._codecs import WireFormatError, loads_json, loads_xml
from aiosms._errors import (
    AccountError,
    AuthenticationError,
    BlacklistedError,
    ContentError,
    DeliveryUnknownError,
    GatewayError,
    InsufficientFundsError,
    MessageNotFoundError,
    ProtocolError,
    ProviderError,
    RecipientError,
    RequestError,
    SenderError,
    ValidationError,
)
from aiosms._gateway import Format, HttpMethod
from aiosms._models import Balance, DeliveryState, Message, Profile, Receipt, StatusReport
from aiosms._outcomes import check_parts
from aiosms._secret import Secret
from aiosms._segments import count_parts
from aiosms._transport import WireRequest
from aiosms._wire import STRUCTURE_ERRORS, make_converter, to_int

__all__ = [
    "CODES",
    "DEFAULT_BASE_URL",
    "STATES",
    "ThousandSmsCodec",
    "lookup",
    "parse_gateway_date",
    "provider_error",
]

logger = logging.getLogger("aiosms.1000sms")

PROVIDER = "1000sms"
DEFAULT_BASE_URL = "http://api.1000sms.ru/"

PUSH_MSG = "push_msg"
GET_MSG_REPORT = "get_msg_report"
GET_PROFILE = "get_profile"

_FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}


@attrs.frozen(slots=True)
class Code:
    """One meaning of a documented ``err_code``.

    ``text`` is the document's own words (what the gateway puts in ``msg/text``),
    ``description`` the same in English, ``error`` the class raised for it.
    ``transient`` marks the gateway's own failures that a read may try again.
    """

    text: str
    description: str
    error: type[ProviderError]
    transient: bool = False


#: Every ``err_code`` the 1000sms document lists (0 is success and raises nothing).
#: 602 is documented twice, for an unknown user and for an unknown SMS: the two are
#: told apart by the reply's ``text`` (see ``lookup``).
CODES: dict[int, tuple[Code, ...]] = {
    1: (Code("Не корректный id SMS.", "invalid SMS id", MessageNotFoundError),),
    2: (Code("Неверный логин и(или) пароль.", "wrong login and/or password", AuthenticationError),),
    7: (Code("Заданы не все необходимые параметры.", "missing parameters", RequestError),),
    99: (Code("Транзакция отправки SMS не прошла.", "the send transaction failed", GatewayError),),
    501: (
        Code(
            "Список транзакционных номеров не найден. Попробуйте позже.",
            "transaction number list not found, try later",
            GatewayError,
            transient=True,
        ),
    ),
    602: (
        Code("Пользователя не существует.", "user does not exist", AuthenticationError),
        Code("SMS не существует.", "SMS does not exist", MessageNotFoundError),
    ),
    603: (
        Code(
            "Не корректная информация по Пользователю или Статусу SMS.",
            "invalid user or SMS status information",
            MessageNotFoundError,
        ),
    ),
    604: (Code("Не корректный id пользователя.", "invalid user id", AuthenticationError),),
    605: (Code("Пользователь заблокирован.", "user is blocked", AccountError),),
    607: (Code("Имя отправителя недопустимо.", "sender name not allowed", SenderError),),
    608: (
        Code(
            "Не допустимая длина имени отправителя.", "sender name length not allowed", SenderError
        ),
    ),
    609: (Code("Сотовый оператор не подключен.", "mobile operator not connected", AccountError),),
    610: (Code("Не подключен тариф пользователю.", "no tariff set for the user", AccountError),),
    611: (
        Code("Не корректно установлена стоимость SMS.", "SMS price set incorrectly", AccountError),
    ),
    612: (Code("Не корректный id Тарифной группы.", "invalid tariff group id", AccountError),),
    614: (Code("Тарифной группы не существует.", "tariff group does not exist", AccountError),),
    615: (
        Code(
            "Не корректная информация по id тарифной группы.",
            "invalid tariff group information",
            AccountError,
        ),
    ),
    616: (Code("Не указан источник отправки SMS.", "no SMS source given", SenderError),),
    617: (
        Code(
            "Неверный формат номера получателя SMS.",
            "invalid recipient number format",
            RecipientError,
        ),
    ),
    618: (Code("Номер Абонента в Черном списке.", "recipient is blacklisted", BlacklistedError),),
    619: (
        Code(
            "Номер не является допустимым Номером СМС-центра.",
            "not a valid SMS centre number",
            RecipientError,
        ),
    ),
    620: (
        Code("Имя отправителя должно быть на латинице.", "sender name must be Latin", SenderError),
    ),
    621: (
        Code(
            "В имени отправителя более 2-цифр или общая длина менее 4-х символов, что недопустимо.",
            "sender name has more than 2 digits or fewer than 4 characters",
            SenderError,
        ),
    ),
    622: (
        Code(
            "Номер Абонента в глобальном Черном списке.",
            "recipient is on the global blacklist",
            BlacklistedError,
        ),
    ),
    623: (
        Code(
            "Не достаточно средств. Пополните баланс.",
            "insufficient funds",
            InsufficientFundsError,
        ),
    ),
    624: (
        Code(
            "Обнаружены запрещенные слова в тексте сообщения. Обратитесь в поддержку.",
            "forbidden words in the text",
            ContentError,
        ),
    ),
    699: (
        Code(
            "Не удалось установить соединение.",
            "could not connect",
            GatewayError,
            transient=True,
        ),
    ),
}

#: ``get_msg_report`` states: the unified state and the document's words for each.
STATES: dict[int, tuple[DeliveryState, str]] = {
    0: (DeliveryState.SENT, "Отправлено"),
    1: (DeliveryState.DELIVERED, "Доставлено"),
    2: (DeliveryState.UNDELIVERED, "Не доставлено"),
    4: (DeliveryState.QUEUED, "В очереди на SMSC"),
    8: (DeliveryState.SENT, "Доставлено в SMSC"),
    16: (DeliveryState.UNDELIVERED, "Не доставлено в SMSC"),
}


def lookup(code: int, text: str, call: str) -> Code | None:
    """The documented meaning of ``code`` in a reply to ``call``, or None if undocumented.

    602 means "user does not exist" or "SMS does not exist": the gateway's ``text``
    decides; when it names neither, a status query means the SMS, anything else the user.
    """
    meanings = CODES.get(code)
    if not meanings:
        return None
    if len(meanings) == 1:
        return meanings[0]
    user, sms = meanings
    words = text.casefold()
    if "пользовател" in words:
        return user
    if "sms" in words or "смс" in words:
        return sms
    return sms if call == GET_MSG_REPORT else user


def provider_error(code: int, text: str, call: str) -> ProviderError:
    """The typed error for a non-zero ``err_code`` (an undocumented one is a GatewayError)."""
    meaning = lookup(code, text, call)
    if meaning is None:
        return GatewayError(
            f"{PROVIDER} error {code} (undocumented): {text}".rstrip(": "),
            provider=PROVIDER,
            code=code,
            text=text,
        )
    words = text or meaning.text
    return meaning.error(
        f"{PROVIDER} error {code} ({meaning.description}): {words}",
        provider=PROVIDER,
        code=code,
        text=words,
        transient=meaning.transient,
    )


# -- wire records ---------------------------------------------------------------------
#
# A reply is read in two steps. First its ``msg/err_code``, from the raw document and
# nothing else: a refusal must be recognised whatever the rest of the reply holds. Then,
# only for a success, its ``data``, field by field and leniently: a field that cannot
# be read becomes None, and only the fields a call cannot do without (a push's ``id``,
# a report's ``state``, a profile's ``id`` and ``email``) make the reply unreadable.

#: The codec's own converter: no hook lands on a converter anyone else shares.
_converter = make_converter()

#: A price per part beyond this is no price: read as unknown, so no cost computed from
#: it can overflow.
_MAX_PRICE = Decimal("1e12")


def _head(content: dict[str, Any]) -> tuple[int, str, Any]:
    """A reply's ``err_code``, its ``msg/text`` ("" when not text) and its ``data``.

    Raises ``STRUCTURE_ERRORS`` when no ``err_code`` can be read; nothing else in the
    reply is looked at here.
    """
    msg = content["msg"]
    if not isinstance(msg, dict):
        raise TypeError("msg is not an object")
    return to_int(msg["err_code"], int), _text(msg.get("text")) or "", content.get("data")


def _text(value: object) -> str | None:
    """A text field, or None when empty or not text."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _count(value: object) -> int | None:
    """A count of SMS parts, or None when it is not a positive whole number."""
    try:
        count = to_int(value, int)
    except (*STRUCTURE_ERRORS, ArithmeticError):
        return None
    return count if count > 0 else None


def _amount(value: object) -> Decimal | None:
    """An amount of money, or None when empty or not an amount."""
    if value is None or value == "":
        return None
    try:
        return _converter.structure(value, Decimal)
    except (*STRUCTURE_ERRORS, ArithmeticError):
        return None


def _price(value: object) -> Decimal | None:
    """A price per part, or None when it is no plausible price."""
    price = _amount(value)
    if price is None or price < 0 or price > _MAX_PRICE:
        return None
    return price


def _cost(price: Decimal | None, parts: int | None) -> Decimal | None:
    if price is None or parts is None:
        return None
    try:
        return price * parts
    except ArithmeticError:
        return None


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M")
# MySQL's "no date" and a zero timestamp are how a PHP backend says "not yet".
_NO_DATE = frozenset({"0", "0000-00-00 00:00:00", "0000-00-00"})


def parse_gateway_date(value: object) -> datetime | None:
    """A 1000sms date as an aware datetime in Moscow time, or None when empty.

    The document gives no format, so this accepts ``YYYY-MM-DD HH:MM:SS``,
    ``DD.MM.YYYY HH:MM:SS``, ISO 8601 (an offset converts to Moscow time, none means
    Moscow time) and unix timestamps (a number or a digit string). Empty, ``0`` and
    MySQL's zero date mean "not set". Anything else, including a date that cannot be
    expressed in Moscow time, raises ``ValueError`` or ``TypeError``.

    >>> parse_gateway_date("2024-03-01 12:30:00").isoformat()
    '2024-03-01T12:30:00+03:00'
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a date")
    if isinstance(value, (int, float)):
        return _from_timestamp(value)
    if not isinstance(value, str):
        raise TypeError(f"not a date: {type(value).__name__}")
    text = value.strip()
    if not text or text in _NO_DATE:
        return None
    if text.isascii() and text.isdigit():
        return _from_timestamp(int(text))
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=v.MOSCOW)
        except ValueError:
            pass
    if text.endswith("Z"):
        # Python 3.10's fromisoformat does not read "Z".
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=v.MOSCOW)
    try:
        return parsed.astimezone(v.MOSCOW)
    except OverflowError:
        # The first or last hours of year 1 or 9999 in another offset.
        raise ValueError("the date is out of range in Moscow time") from None


def _report_date(value: object) -> datetime | None:
    """A report's date, or None when it cannot be read.

    The document names no date format: a report's state must not be lost to a date
    written in an unexpected way, or to a value that is no date at all.
    """
    try:
        return parse_gateway_date(value)
    except (ValueError, TypeError):
        logger.debug("1000sms: a date that could not be read was left out")
        return None


def _from_timestamp(seconds: float) -> datetime | None:
    if seconds == 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, v.MOSCOW)
    except (OverflowError, OSError, ValueError):
        # Out of range, or a float that is no number (NaN).
        raise ValueError("timestamp out of range") from None


@attrs.frozen(slots=True, eq=False)
class ThousandSmsCodec:
    """1000sms's wire configuration; its methods build requests and parse replies.

    ``sender`` is the client's default (None: the account's own); ``max_parts``
    refuses longer texts before any request.
    """

    base_url: str
    format: Format
    method: HttpMethod
    email: str
    password: Secret
    sender: str | None = None
    max_parts: int | None = None
    #: The constant fields of each call, encoded once: they hold the password, so
    #: they are kept behind Secret, like the password itself.
    _form_prefixes: dict[str, Secret] = attrs.field(init=False, factory=dict, repr=False)

    provider = PROVIDER
    #: push_msg carries one message: a Batcher fans out single requests.
    batch_limit = 1

    # -- messages ------------------------------------------------------------------

    def prepare(self, message: Message) -> dict[str, str]:
        """The message as ``push_msg`` arguments, after the gateway's own rules."""
        if message.at is not None:
            raise ValidationError("at", "1000sms has no scheduled sending; send it at that time")
        if message.ttl is not None:
            raise ValidationError("ttl", "1000sms has no message lifetime parameter")
        check_parts(message, self.max_parts)
        args = {"phone": message.to, "text": message.text}
        sender = message.sender or self.sender
        # Without a sender name the gateway sends under the account's default one.
        if sender is not None:
            args["sender_name"] = v.check_thousandsms_sender(sender)
        return args

    # -- requests ------------------------------------------------------------------

    def request(self, call: str, args: Mapping[str, str]) -> WireRequest:
        """The request for one call with its arguments."""
        # The password lives only in this frame and in the request's body or query,
        # neither of which any repr or log shows.
        if self.method == "GET":
            return WireRequest("GET", self.base_url, params=self._fields(call, args))
        # The constant fields are encoded once per call name, not once per message.
        prefix = self._form_prefixes.get(call)
        if prefix is None:
            prefix = self._form_prefixes[call] = Secret(urlencode(self._fields(call, {})))
        body = prefix.value
        if args:
            # What ``urlencode`` does for text values, without its checks per call.
            encoded = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in args.items())
            body = f"{body}&{encoded}"
        return WireRequest(
            "POST", self.base_url, content=body.encode("ascii"), headers=_FORM_HEADERS
        )

    def _fields(self, call: str, args: Mapping[str, str]) -> dict[str, str]:
        return {
            "method": call,
            "email": self.email,
            "password": self.password.value,
            **args,
            # The gateway answers XML unless told otherwise: always say which.
            "format": self.format,
        }

    def send_request(self, wires: Sequence[dict[str, str]]) -> WireRequest:
        """The ``push_msg`` request of one prepared message."""
        (args,) = wires
        return self.request(PUSH_MSG, args)

    def status_request(self, ids: Sequence[str]) -> WireRequest:
        """The ``get_msg_report`` request of one id."""
        (message_id,) = ids
        return self.request(GET_MSG_REPORT, {"id": message_id})

    def profile_request(self) -> WireRequest:
        """The ``get_profile`` request."""
        return self.request(GET_PROFILE, {})

    # -- replies -------------------------------------------------------------------

    def _head(self, body: bytes) -> tuple[int, str, Any]:
        """The reply's ``err_code``, ``msg/text`` and ``data`` (see ``_head``)."""
        return _head(loads_json(body) if self.format == "json" else loads_xml(body))

    def parse_send(
        self, body: bytes, messages: Sequence[Message], wires: Sequence[dict[str, str]]
    ) -> list[Receipt]:
        """The receipt of a ``push_msg``; raises the typed error of a refusal and
        ``DeliveryUnknownError`` for a reply that does not say the message was taken."""
        (message,), (args,) = messages, wires
        try:
            code, text, data = self._head(body)
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise _unknown(message, "the reply could not be read", "unreadable reply") from None
        if code != 0:
            if lookup(code, text, PUSH_MSG) is None:
                raise _unknown(message, f"undocumented error code {code}", f"err_code {code}")
            # Every documented refusal, the gateway's own failures included, says the
            # message was not taken: it is rejected, not unknown.
            raise provider_error(code, text, PUSH_MSG)
        if not isinstance(data, dict):
            raise _unknown(message, "the reply's data could not be read", "unreadable reply")
        return [_receipt(message, data, args.get("sender_name"))]

    def _read_reply(self, body: bytes, call: str, what: str) -> dict[str, Any]:
        """The ``data`` of a successful reply to a read; raises the typed error otherwise."""
        try:
            code, text, data = self._head(body)
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise ProtocolError(f"{PROVIDER} {what}: the reply could not be read") from None
        if code != 0:
            raise provider_error(code, text, call)
        if not isinstance(data, dict):
            raise ProtocolError(f"{PROVIDER} {what}: the reply's data could not be read")
        return data

    def parse_status(self, body: bytes, ids: Sequence[str]) -> list[StatusReport]:
        """The report of a ``get_msg_report``; raises ``MessageNotFoundError`` for an
        id the gateway does not know."""
        (message_id,) = ids
        return [_report(message_id, self._read_reply(body, GET_MSG_REPORT, "status"))]

    def parse_profile(self, body: bytes) -> Profile:
        """The account as a ``get_profile`` reply describes it."""
        return _profile(self._read_reply(body, GET_PROFILE, "profile"))


def parse_balance(profile: Profile) -> Balance:
    """Money on the account: the profile's ``credits`` in its ``currency``."""
    if profile.credits is None:
        raise ProtocolError(f"{PROVIDER} profile: the reply has no credits")
    return Balance(profile.credits, profile.currency or profile.credits_name)


def _receipt(message: Message, data: dict[str, Any], sender: str | None) -> Receipt:
    # The id alone says the message was taken; the rest is information, and a
    # field that cannot be read must not turn an accepted message into an unknown.
    message_id = _text(data.get("id"))
    if message_id is None or not message_id.strip():
        raise _unknown(message, "the reply has no message id", "no message id")
    parts = _count(data.get("n_raw_sms"))
    return Receipt(
        message,
        message_id,
        DeliveryState.QUEUED,
        parts=parts if parts is not None else count_parts(message.text),
        cost=_cost(_price(data.get("credits")), parts),
        sender=_text(data.get("sender_name")) or sender,
    )


def _report(message_id: str, data: dict[str, Any]) -> StatusReport:
    try:
        code = to_int(data["state"], int)
    except STRUCTURE_ERRORS:
        raise ProtocolError(f"{PROVIDER} status: the reply has no readable state") from None
    known = STATES.get(code)
    state, words = known if known else (DeliveryState.UNKNOWN, "undocumented state")
    return StatusReport(
        message_id,
        state,
        code=code,
        state_text=_text(data.get("state_text")) or words,
        user_id=_text(data.get("id")),
        sender=_text(data.get("sender_name")),
        text=_text(data.get("text")),
        phone=_text(data.get("phone")),
        parts=_count(data.get("n_raw_sms")),
        flash=_FLASH.get((_text(data.get("type")) or "").strip()),
        start_time=_report_date(data.get("start_time")),
        last_update=_report_date(data.get("last_update")),
        price_per_part=_price(data.get("credits")),
    )


def _profile(data: dict[str, Any]) -> Profile:
    user_id, email = _text(data.get("id")), _text(data.get("email"))
    if user_id is None or email is None:
        raise ProtocolError(f"{PROVIDER} profile: the reply has no readable id or email")
    return Profile(
        id=user_id,
        email=email,
        first_name=_text(data.get("first_name")),
        last_name=_text(data.get("last_name")),
        credits=_amount(data.get("credits")),
        credits_used=_amount(data.get("credits_used")),
        credits_name=_text(data.get("credits_name")),
        currency=_text(data.get("currency")),
        sender=_text(data.get("sender_name")),
        referral_id=_text(data.get("referral_id")),
    )


#: The report's ``type``: "0" is a flash SMS, "1" a standard one.
_FLASH = {"0": True, "1": False}


def _unknown(message: Message, why: str, kind: str) -> DeliveryUnknownError:
    return DeliveryUnknownError(
        f"{PROVIDER} send: {why}; the gateway may have accepted the message",
        messages=(message,),
        kind=kind,
    )
