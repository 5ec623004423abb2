"""1000sms.ru: the ``push_msg``, ``get_msg_report`` and ``get_profile`` methods.

Builds requests and parses replies; the network is the base client's. Every call
goes to the one documented URL with ``method=`` and its arguments as form fields
(POST, the default) or as the query (GET, which puts the password in the URL).
There are no packets: ``send_many`` and ``status_many`` run one request per item,
concurrently. Every documented ``err_code`` is in ``CODES``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

import attrs
import httpx

from aiosms import _validation as v
from aiosms._client import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    BaseClient,
    Format,
    HttpMethod,
    TimeoutArg,
    _Secret,
    positive_int,
)
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
    SmsError,
    ValidationError,
)
from aiosms._models import Balance, DeliveryState, Message, Profile, Receipt, StatusReport
from aiosms._providers._common import (
    check_parts,
    failed,
    require_id,
    require_message,
    unexpected,
)
from aiosms._retry import RetryPolicy
from aiosms._segments import count_parts
from aiosms._sharded import ProxyArg, VerifyArg
from aiosms._transport import Transport, WireRequest
from aiosms._wire import STRUCTURE_ERRORS, converter, to_int

__all__ = ["CODES", "DEFAULT_BASE_URL", "STATES", "ThousandSms", "parse_gateway_date"]

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
        return converter.structure(value, Decimal)
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


class ThousandSms(BaseClient):
    """Client for 1000sms.ru.

    >>> sms = ThousandSms(email="me@x.ru", password="p", sender="sms-tester")
    >>> async with sms:  # doctest: +SKIP
    ...     receipt = await sms.send(Message(to="79160000000", text="Hi"))

    Options: ``format`` ("json" or "xml"; always sent, as the gateway defaults to
    XML), ``method`` ("POST", the default, or "GET", which puts the password in the
    URL), ``sender`` (optional: without one the gateway uses the account's default
    sender name), ``max_parts`` (refuse, before any request, a text that needs more
    SMS parts; None, the default, sets no limit), ``max_concurrency`` (requests in
    flight in ``send_many``/``status_many``), ``timeout``, ``limits`` (the pool's
    total, split over small httpx pools; by default one connection per request in
    flight), ``retry``, ``proxy`` (a proxy
    URL), ``verify`` (a CA bundle path or an ``ssl.SSLContext``), ``trust_env``
    (True to honour ``HTTPS_PROXY``, ``SSL_CERT_FILE`` and the like), and at most one
    of ``http_client`` (yours, used as is and never closed by aiosms), ``http_transport``
    (an httpx transport for aiosms's own client, such as a fake gateway's) or
    ``transport`` (``"aiohttp"`` for the optional aiohttp transport, asyncio only and
    POST only, or an ``aiosms.AiohttpTransport``).

    The gateway documents plain HTTP on port 80: the password crosses the network in
    clear text whichever verb is used.
    """

    provider = PROVIDER

    def __init__(
        self,
        *,
        email: str,
        password: str,
        sender: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        format: Format = "json",
        method: HttpMethod = "POST",
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_parts: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        transport: Transport | Literal["aiohttp"] | None = None,
        proxy: ProxyArg = None,
        verify: VerifyArg = True,
        trust_env: bool = False,
    ) -> None:
        if not isinstance(email, str) or not email.strip():
            raise ValidationError("email", "must be a non-empty string")
        if sender is not None:
            v.check_thousandsms_sender(v.check_sender_type(sender) or "")
        #: Most SMS parts a message may take (None: no limit), checked before any request.
        self.max_parts = None if max_parts is None else positive_int(max_parts, "max_parts")
        super().__init__(
            password=password,
            sender=sender,
            base_url=base_url,
            format=format,
            method=method,
            timeout=timeout,
            limits=limits,
            retry=retry,
            max_concurrency=max_concurrency,
            http_client=http_client,
            http_transport=http_transport,
            transport=transport,
            proxy=proxy,
            verify=verify,
            trust_env=trust_env,
        )
        self._form_prefixes: dict[str, _Secret] = {}
        self.email = email

    def __repr__(self) -> str:
        return (
            f"ThousandSms(email={self.email!r}, sender={self.sender!r}, "
            f"format={self.format!r}, method={self.method!r}, base_url={self.base_url!r})"
        )

    # -- public calls ------------------------------------------------------------

    async def send(self, message: Message, *, timeout: TimeoutArg = None) -> Receipt:
        """Send one message (``push_msg``); return its receipt or raise its typed error.

        Raises ``ValidationError`` before any request (including for ``at`` and
        ``ttl``, which 1000sms cannot carry), ``ProviderError`` subclasses when the
        gateway refuses, ``TransportError`` when it provably never left and
        ``DeliveryUnknownError`` when it may have.
        """
        require_message(message)
        self._check_open()
        return await self._push(message, self._wire_message(message), timeout)

    async def status(self, message_id: str, *, timeout: TimeoutArg = None) -> StatusReport:
        """What the gateway knows of one message (``get_msg_report``).

        Raises ``MessageNotFoundError`` for an id the gateway does not know.
        """
        message_id = require_id(message_id)
        self._check_open()
        return await self._read(
            self._request(GET_MSG_REPORT, {"id": message_id}),
            lambda body: self._parse_report(body, message_id),
            what="status",
            timeout=timeout,
        )

    async def profile(self, *, timeout: TimeoutArg = None) -> Profile:
        """The account as ``get_profile`` describes it, every documented field."""
        self._check_open()
        return await self._read(
            self._request(GET_PROFILE, {}), self._parse_profile, what="profile", timeout=timeout
        )

    async def balance(self, *, timeout: TimeoutArg = None) -> Balance:
        """Money on the account: the profile's ``credits`` in its ``currency``."""
        profile = await self.profile(timeout=timeout)
        if profile.credits is None:
            raise ProtocolError(f"{PROVIDER} profile: the reply has no credits")
        return Balance(profile.credits, profile.currency or profile.credits_name)

    # -- requests ----------------------------------------------------------------

    def _request(self, call: str, args: Mapping[str, str]) -> WireRequest:
        # The password lives only in this frame and in the request's body or query,
        # neither of which any repr or log shows.
        fields = {
            "method": call,
            "email": self.email,
            "password": self._password.value,
            **args,
            # The gateway answers XML unless told otherwise: always say which.
            "format": self.format,
        }
        if self.method == "GET":
            return WireRequest("GET", self.base_url, params=fields)
        # The constant fields are encoded once per call name, not once per message.
        # They hold the password: kept behind _Secret, like the password itself.
        prefix = self._form_prefixes.get(call)
        if prefix is None:
            names = ("method", "email", "password", "format")
            prefix = self._form_prefixes[call] = _Secret(urlencode({k: fields[k] for k in names}))
        constant = prefix.value
        body = f"{constant}&{urlencode(args)}" if args else constant
        return WireRequest(
            "POST", self.base_url, content=body.encode("ascii"), headers=_FORM_HEADERS
        )

    # -- what a Batcher drives --------------------------------------------------------

    @property
    def _batch_limit(self) -> int | None:
        # push_msg carries one message: a Batcher fans out single requests.
        return 1

    def _prepare(self, message: Message) -> dict[str, str]:
        return self._wire_message(message)

    async def _send_batch(
        self, messages: list[Message], wires: list[dict[str, str]], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        (message,), (args,) = messages, wires
        try:
            self._check_open()
            return [await self._push(message, args, timeout)]
        except SmsError as error:
            return [failed(message, error.with_traceback(None))]
        except Exception as error:
            # One request's surprise is its message's outcome, never its siblings'.
            return unexpected(PROVIDER, messages, error)

    async def _status_batch(self, ids: list[str], timeout: TimeoutArg) -> list[StatusReport]:
        (message_id,) = ids
        try:
            return [await self.status(message_id, timeout=timeout)]
        except MessageNotFoundError as missing:
            return [
                StatusReport(message_id, DeliveryState.REJECTED, error=missing.with_traceback(None))
            ]

    def _wire_message(self, message: Message) -> dict[str, str]:
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

    async def _push(self, message: Message, args: dict[str, str], timeout: TimeoutArg) -> Receipt:
        response = await self._send(
            self._request(PUSH_MSG, args), messages=(message,), what="send", timeout=timeout
        )
        return self._parse_push(response.body, message, args.get("sender_name"))

    # -- replies -----------------------------------------------------------------

    def _head(self, body: bytes) -> tuple[int, str, Any]:
        """The reply's ``err_code``, ``msg/text`` and ``data`` (see ``_head``)."""
        return _head(loads_json(body) if self.format == "json" else loads_xml(body))

    def _parse_push(self, body: bytes, message: Message, sender: str | None) -> Receipt:
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

    def _parse_report(self, body: bytes, message_id: str) -> StatusReport:
        data = self._read_reply(body, GET_MSG_REPORT, "status")
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

    def _parse_profile(self, body: bytes) -> Profile:
        data = self._read_reply(body, GET_PROFILE, "profile")
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
