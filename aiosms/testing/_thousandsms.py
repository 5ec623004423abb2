"""A stateful fake of 1000sms.ru that follows its API document.

One URL; ``method=`` chooses ``push_msg``, ``get_msg_report`` or ``get_profile``;
arguments come as the query (GET) or as form fields (POST); replies are XML unless
``format=json`` is asked for. It checks credentials and input with the documented
error codes, charges a balance per SMS part, keeps a ledger of accepted messages
and moves their states 4 → 8 → 1 (or 2) as they are asked about. Its checks are its
own, written from the document, not borrowed from the client under test.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs
import xmltodict

from aiosms.testing._faults import Fault
from aiosms.testing._gateway import FakeGateway, FakeRequest, Outcome

if TYPE_CHECKING:
    from aiosms._providers.thousandsms import ThousandSms

# The gateway's clock: Moscow, UTC+3 all year.
_MSK = timezone(timedelta(hours=3))
_DATE = "%Y-%m-%d %H:%M:%S"
_SENDER_CHARS = re.compile(r"[A-Za-z0-9 ._\-!&'\"]+")
_NUMBER = re.compile(r"[0-9]{10,15}")

#: The document's words for each ``err_code`` the fake answers with.
TEXTS: dict[int, str] = {
    0: "Выполнено успешно.",
    1: "Не корректный id SMS.",
    2: "Неверный логин и(или) пароль.",
    7: "Заданы не все необходимые параметры.",
    99: "Транзакция отправки SMS не прошла.",
    501: "Список транзакционных номеров не найден. Попробуйте позже.",
    603: "Не корректная информация по Пользователю или Статусу SMS.",
    604: "Не корректный id пользователя.",
    605: "Пользователь заблокирован.",
    607: "Имя отправителя недопустимо.",
    608: "Не допустимая длина имени отправителя.",
    609: "Сотовый оператор не подключен.",
    610: "Не подключен тариф пользователю.",
    611: "Не корректно установлена стоимость SMS.",
    612: "Не корректный id Тарифной группы.",
    614: "Тарифной группы не существует.",
    615: "Не корректная информация по id тарифной группы.",
    616: "Не указан источник отправки SMS.",
    617: "Неверный формат номера получателя SMS.",
    618: "Номер Абонента в Черном списке.",
    619: "Номер не является допустимым Номером СМС-центра.",
    620: "Имя отправителя должно быть на латинице.",
    621: "В имени отправителя более 2-цифр или общая длина менее 4-х символов, что недопустимо.",
    622: "Номер Абонента в глобальном Черном списке.",
    623: "Не достаточно средств. Пополните баланс.",
    624: "Обнаружены запрещенные слова в тексте сообщения. Обратитесь в поддержку.",
    699: "Не удалось установить соединение.",
}
#: 602 is documented twice.
USER_NOT_FOUND = "Пользователя не существует."
SMS_NOT_FOUND = "SMS не существует."

#: ``state_text`` for each report state, as documented.
STATE_TEXTS: dict[int, str] = {
    0: "Отправлено",
    1: "Доставлено",
    2: "Не доставлено",
    4: "В очереди на SMSC",
    8: "Доставлено в SMSC",
    16: "Не доставлено в SMSC",
}
_FINAL_STATES = frozenset({1, 2, 16})


@attrs.define
class ThousandSmsLedgerEntry:
    """A message the fake accepted, with its state as the next report will give it."""

    id: str
    sender_name: str
    phone: str
    text: str
    parts: int
    price: Decimal
    cost: Decimal
    start_time: datetime
    state: int = 4
    last_update: datetime | None = None
    flash: bool = False


def _parts(text: str) -> int:
    # The fake's own, simpler count: ASCII in 160/153 septets, anything else 70/67.
    single, split = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // split)


@attrs.frozen(slots=True)
class _Scripted:
    code: int
    text: str | None
    method: str | None


class _Refusal(Exception):
    def __init__(self, code: int, text: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.text = text if text is not None else TEXTS.get(code, "")


class FakeThousandSms(FakeGateway):
    """Fake 1000sms.ru gateway.

    >>> fake = FakeThousandSms(balance=Decimal("10"), price=Decimal("2.5"))
    >>> async with fake.client(sender="sms-tester") as sms:  # doctest: +SKIP
    ...     receipt = await sms.send(aiosms.Message(to="79160000000", text="Hi"))
    >>> fake.ledger[0].phone  # doctest: +SKIP
    '79160000000'

    ``price``: the cost of one SMS part; ``sender_name``: the account's default
    sender, used when a request names none; ``senders``: the names the account may
    use (None accepts any well-formed one; others get 607); ``blacklist`` and
    ``global_blacklist``: numbers refused with 618 and 622; ``forbidden_words``:
    words that get a text refused with 624; ``undeliverable_numbers``: numbers whose
    messages end in state 2 instead of 1; ``blocked``: every call gets 605;
    ``answer_with()`` scripts an error reply; ``faults`` injects faults.
    """

    prefix = "/"
    host = "fake.1000sms.test"

    def __init__(
        self,
        *,
        email: str = "test@example.com",
        password: str = "test-password",
        balance: Decimal | int | str = Decimal("1000"),
        price: Decimal | int | str = Decimal("2.5"),
        sender_name: str = "sms-tester",
        senders: Iterable[str] | None = None,
        user_id: str = "1001",
        first_name: str = "Test",
        last_name: str = "User",
        credits_name: str = "руб.",
        currency: str = "руб.",
        referral_id: str = "0",
        blacklist: Iterable[str] = (),
        global_blacklist: Iterable[str] = (),
        forbidden_words: Iterable[str] = (),
        undeliverable_numbers: Iterable[str] = (),
        blocked: bool = False,
        clock: Callable[[], datetime] | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.email = email
        self.password = password
        self.balance = Decimal(balance)
        self.credits_used = Decimal(0)
        self.price = Decimal(price)
        self.sender_name = sender_name
        self.senders = frozenset(senders) if senders is not None else None
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.credits_name = credits_name
        self.currency = currency
        self.referral_id = referral_id
        self.blacklist = set(blacklist)
        self.global_blacklist = set(global_blacklist)
        self.forbidden_words = set(forbidden_words)
        self.undeliverable_numbers = set(undeliverable_numbers)
        self.blocked = blocked
        self.clock = clock or (lambda: datetime.now(_MSK))
        self.ledger: list[ThousandSmsLedgerEntry] = []
        self.messages: dict[str, ThousandSmsLedgerEntry] = {}
        self._ids = itertools.count(4_000_001)
        self._scripted: deque[_Scripted] = deque()

    def answer_with(
        self, code: int, *, text: str | None = None, times: int = 1, method: str | None = None
    ) -> None:
        """Answer the next ``times`` calls (to ``method`` if given) with error ``code``.

        Nothing is done for those calls. ``text`` defaults to the document's words;
        for 602 that is "SMS не существует." on ``get_msg_report`` and
        "Пользователя не существует." elsewhere.
        """
        self._scripted.extend([_Scripted(code, text, method)] * times)

    def set_state(self, message_id: str, state: int, *, flash: bool | None = None) -> None:
        """Put a message in a report ``state`` (a final one stamps ``last_update``)."""
        entry = self.messages[message_id]
        entry.state = state
        entry.last_update = self.clock() if state in _FINAL_STATES else None
        if flash is not None:
            entry.flash = flash

    def client(self, **options: Any) -> ThousandSms:
        """A ``ThousandSms`` wired to this fake in process, with its credentials."""
        from aiosms._providers.thousandsms import ThousandSms

        options.setdefault("email", self.email)
        options.setdefault("password", self.password)
        return ThousandSms(**self.wire(options))

    # -- requests ------------------------------------------------------------------

    def endpoint(self, request: FakeRequest) -> str:
        return _args(request).get("method", "") or "unknown"

    def process(self, request: FakeRequest, fault: Fault | None) -> Outcome:
        if request.path not in ("", "index.php"):
            return Outcome("reply", 404, b"not found")
        if request.method not in ("GET", "POST"):
            return Outcome("reply", 405, b"method not allowed")
        args = _args(request)
        fmt = _format(args)
        call = args.get("method", "")
        self.record(call or "unknown", request, fmt, 1 if call == "push_msg" else 0)
        try:
            data = self._dispatch(call, args)
        except _Refusal as refusal:
            return _reply(fmt, refusal.code, refusal.text, None)
        return _reply(fmt, 0, TEXTS[0], data)

    def internal_error(self, request: FakeRequest) -> Outcome:
        return _reply(_format(_args(request)), 99, TEXTS[99], None)

    def malformed_body(self, request: FakeRequest) -> bytes:
        if _format(_args(request)) == "json":
            return b'{"msg": {"err_code": "0", "text": "'
        return b"<response><msg><err_code>0</err_code><text>"

    def _dispatch(self, call: str, args: dict[str, str]) -> dict[str, Any]:
        scripted = self._take_scripted(call)
        if scripted is not None:
            text = scripted.text
            if text is None and scripted.code == 602:
                text = SMS_NOT_FOUND if call == "get_msg_report" else USER_NOT_FOUND
            raise _Refusal(scripted.code, text)
        if not call or not args.get("email") or not args.get("password"):
            raise _Refusal(7)
        if (args["email"], args["password"]) != (self.email, self.password):
            raise _Refusal(2)
        if self.blocked:
            raise _Refusal(605)
        if call == "push_msg":
            return self._push_msg(args)
        if call == "get_msg_report":
            return self._get_msg_report(args)
        if call == "get_profile":
            return self._get_profile()
        raise _Refusal(7)

    def _take_scripted(self, call: str) -> _Scripted | None:
        for position, scripted in enumerate(self._scripted):
            if scripted.method is None or scripted.method == call:
                del self._scripted[position]
                return scripted
        return None

    def _push_msg(self, args: dict[str, str]) -> dict[str, Any]:
        phone, text = args.get("phone", ""), args.get("text", "")
        if not phone or not text:
            raise _Refusal(7)
        sender = args.get("sender_name") or self.sender_name
        if not sender:
            raise _Refusal(616)
        _check_sender(sender, self.senders)
        if not _NUMBER.fullmatch(phone):
            raise _Refusal(617)
        if phone in self.global_blacklist:
            raise _Refusal(622)
        if phone in self.blacklist:
            raise _Refusal(618)
        lowered = text.casefold()
        if any(word.casefold() in lowered for word in self.forbidden_words):
            raise _Refusal(624)
        parts = _parts(text)
        cost = self.price * parts
        if cost > self.balance:
            raise _Refusal(623)
        self.balance -= cost
        self.credits_used += cost
        entry = ThousandSmsLedgerEntry(
            str(next(self._ids)), sender, phone, text, parts, self.price, cost, self.clock()
        )
        self.ledger.append(entry)
        self.messages[entry.id] = entry
        # As a PHP backend does, some numbers come back as ints and some as strings.
        return {
            "id": int(entry.id),
            "credits": str(self.price),
            "n_raw_sms": parts,
            "sender_name": sender,
        }

    def _get_msg_report(self, args: dict[str, str]) -> dict[str, Any]:
        message_id = args.get("id", "")
        if not message_id:
            raise _Refusal(7)
        if not message_id.isdigit():
            raise _Refusal(1)
        entry = self.messages.get(message_id)
        if entry is None:
            raise _Refusal(602, SMS_NOT_FOUND)
        report = _report(entry, self.user_id)
        # Each look moves a message one step on: queued → at the SMSC → final.
        if entry.state == 4:
            entry.state = 8
        elif entry.state in (0, 8):
            final = 2 if entry.phone in self.undeliverable_numbers else 1
            self.set_state(entry.id, final)
        return report

    def _get_profile(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "credits": str(self.balance),
            "credits_used": str(self.credits_used),
            "credits_name": self.credits_name,
            "currency": self.currency,
            "sender_name": self.sender_name,
            "referral_id": self.referral_id,
        }


def _args(request: FakeRequest) -> dict[str, str]:
    """The call's arguments: the query, and for a form POST the body too (as PHP's $_REQUEST)."""
    args = dict(request.query)
    media = request.content_type.split(";", 1)[0].strip().lower()
    if request.method == "POST" and media == "application/x-www-form-urlencoded":
        body = request.body.decode("utf-8", errors="replace")
        args.update(parse_qsl(body, keep_blank_values=True))
    return args


def _format(args: dict[str, str]) -> str:
    # The document: without format the reply is XML.
    return "json" if args.get("format", "").strip().lower() == "json" else "xml"


# -- the gateway's rules and replies, apart from its state ------------------------


def _check_sender(sender: str, allowed: frozenset[str] | None) -> None:
    if not sender.isascii() or not _SENDER_CHARS.fullmatch(sender):
        raise _Refusal(620)
    if sum(c.isdigit() for c in sender) > 2 or len(sender) < 4:
        raise _Refusal(621)
    if len(sender) > 11:
        raise _Refusal(608)
    if allowed is not None and sender not in allowed:
        raise _Refusal(607)


def _report(entry: ThousandSmsLedgerEntry, user_id: str) -> dict[str, Any]:
    """A message's ``get_msg_report`` data, as the document lists it."""
    return {
        "id": user_id,
        "sender_name": entry.sender_name,
        "text": entry.text,
        "phone": entry.phone,
        "type": "0" if entry.flash else "1",
        "n_raw_sms": str(entry.parts),
        "start_time": entry.start_time.astimezone(_MSK).strftime(_DATE),
        "last_update": (
            entry.last_update.astimezone(_MSK).strftime(_DATE) if entry.last_update else ""
        ),
        "dlr_mask": "",
        "dlr_url": "",
        "sms_validity": "",
        "state": entry.state,
        "smpp_msgdata": "",
        "credits": str(entry.price),
        "state_text": STATE_TEXTS.get(entry.state, ""),
    }


def _reply(fmt: str, code: int, text: str, data: dict[str, Any] | None) -> Outcome:
    """The gateway's reply envelope (``msg`` and ``data``) in JSON or XML."""
    msg = {"err_code": str(code), "text": text, "type": "message" if code == 0 else "error"}
    if fmt == "json":
        # PHP encodes an empty array as [], which is what an error's data is.
        payload = {"msg": msg, "data": data if data is not None else []}
        body = json.dumps(payload, ensure_ascii=False).encode()
        return Outcome("reply", 200, body, {"content-type": "application/json; charset=utf-8"})
    fields = {k: "" if v is None else str(v) for k, v in (data or {}).items()}
    body = xmltodict.unparse(
        {"response": {"msg": msg, "data": fields or None}}, encoding="utf-8"
    ).encode()
    # Keep a CR in a text a CR: a raw one would reach the client as LF.
    body = body.replace(b"\r", b"&#13;")
    return Outcome("reply", 200, body, {"content-type": "text/xml; charset=utf-8"})
