"""A stateful fake of my-sms.ru that follows its REST document.

It checks credentials, validates each message with the documented per-message
codes, charges a balance, keeps a ledger of accepted messages and moves their
states 2 → 3 → 4 as they are asked about. Its checks are its own, written from the
document, not borrowed from the client under test.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import attrs
import xmltodict

from aiosms.testing._faults import Fault
from aiosms.testing._gateway import FakeGateway, FakeRequest, Outcome

if TYPE_CHECKING:
    from aiosms._providers.mysms import MySms

_SENDER_LATIN = re.compile(r"[A-Za-z0-9 ._\-!&'\"]{1,11}")
_SENDER_DIGITS = re.compile(r"[0-9]{1,15}")
_NUMBER = re.compile(r"[0-9]{10,15}")
_XMLNS = ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'


@attrs.define
class LedgerEntry:
    """A message the fake accepted: what it will never accept twice."""

    id: str
    sender: str
    phone: str
    text: str
    date: str | None
    ttl: str | None
    cost: Decimal
    state: int = 2


def _parts(text: str) -> int:
    # The fake's own, simpler count: ASCII in 160/153 septets, anything else 70/67.
    single, split = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // split)


class FakeMySms(FakeGateway):
    """Fake my-sms.ru gateway.

    >>> fake = FakeMySms(balance=Decimal("10"))
    >>> async with fake.client(sender="MyShop") as sms:  # doctest: +SKIP
    ...     receipt = await sms.send(aiosms.Message(to="79112223333", text="Hi"))
    >>> fake.ledger[0].phone  # doctest: +SKIP
    '79112223333'

    ``senders``: registered sender names (None accepts any well-formed one);
    ``price``: the cost of one SMS part; ``reject_number()`` makes the gateway refuse
    a number with a chosen code; ``faults`` injects faults.
    """

    prefix = "/rest/sms/"
    host = "fake.my-sms.test"

    def __init__(
        self,
        *,
        username: str = "test-user",
        password: str = "test-password",
        balance: Decimal | int | str = Decimal("1000"),
        price: Decimal | int | str = Decimal("1.5"),
        senders: Iterable[str] | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.username = username
        self.password = password
        self.balance = Decimal(balance)
        self.price = Decimal(price)
        self.senders = frozenset(senders) if senders is not None else None
        self.ledger: list[LedgerEntry] = []
        self.messages: dict[str, LedgerEntry] = {}
        self.rejected_numbers: dict[str, int] = {}

    def reject_number(self, phone: str, code: int = -12) -> None:
        """Make the gateway refuse messages to ``phone`` with ``code`` (-12 by default)."""
        self.rejected_numbers[phone] = code

    def set_state(self, message_id: str, state: int) -> None:
        self.messages[message_id].state = state

    def client(self, **options: Any) -> MySms:
        """A ``MySms`` with this fake's credentials, wired to it in process (or to ``base_url``)."""
        from aiosms._providers.mysms import MySms

        options.setdefault("username", self.username)
        options.setdefault("password", self.password)
        return MySms(**self.wire(options))

    # -- requests ------------------------------------------------------------------

    def endpoint(self, request: FakeRequest) -> str:
        return request.path.split("/", 1)[0]

    def _format(self, request: FakeRequest) -> str:
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def process(self, request: FakeRequest, fault: Fault | None) -> Outcome:
        endpoint, fmt = self.endpoint(request), self._format(request)
        if endpoint not in ("send", "status", "credit") or fmt not in ("json", "xml"):
            return Outcome("reply", 404, b"not found")
        if request.method not in ("GET", "POST"):
            return Outcome("reply", 405, b"method not allowed")
        try:
            auth, items = self._read_request(request, endpoint, fmt)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Outcome("reply", 400, b"bad request")
        self.record(endpoint, request, fmt, len(items))
        if auth != (self.username, self.password):
            return self._reply(request, endpoint, fmt, {"state": "-1"})
        if endpoint == "credit":
            balance = f"{self.balance:.4f}".replace(".", ",")
            return self._reply(request, endpoint, fmt, {"state": "0", "balance": balance})
        if endpoint == "send":
            data = [self._accept(item) for item in items]
        else:
            data = [self._check(item) for item in items]
        if fault is not None and fault.kind == "wrong_count":
            data = data[:-1] if data else [{"id": "", "state": "2"}]
        return self._reply(request, endpoint, fmt, {"state": "0", "data": data})

    def internal_error(self, request: FakeRequest) -> Outcome:
        endpoint, fmt = self.endpoint(request), self._format(request)
        return self._reply(request, endpoint, fmt, {"state": "-50"})

    def malformed_body(self, request: FakeRequest) -> bytes:
        if self._format(request) == "xml":
            return b"<sendSMS><state>0</state><data><message><id>"
        return b'{"state": "0", "data": [{"id": "'

    def _read_request(
        self, request: FakeRequest, endpoint: str, fmt: str
    ) -> tuple[tuple[str, str], list[dict[str, Any]]]:
        if request.method == "GET":
            q = request.query
            auth = (q.get("u", ""), q.get("p", ""))
            if endpoint == "send":
                item = {"source": q.get("s"), "destination": q.get("d"), "text": q.get("t")}
                item.update((k, q[k]) for k in ("date", "ttl") if k in q)
                return auth, [item]
            if endpoint == "status":
                return auth, [{"id": q.get("id", "")}]
            return auth, []
        if fmt == "json":
            payload = json.loads(request.body.decode())
            items = payload.get("data") or []
        else:
            document = xmltodict.parse(
                request.body, force_list=("message",), strip_whitespace=False
            )
            (payload,) = document.values()
            data = payload.get("data") or {}
            items = data.get("message") or []
        credentials = payload["auth"]
        auth = (str(credentials.get("username") or ""), str(credentials.get("password") or ""))
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError("data must be a list of objects")
        return auth, items

    def _accept(self, item: dict[str, Any]) -> dict[str, str]:
        code = self._refusal(item)
        if code is not None:
            return {"id": "", "state": str(code)}
        text = str(item["text"])
        cost = self.price * _parts(text)
        if cost > self.balance:
            return {"id": "", "state": "-13"}
        self.balance -= cost
        entry = LedgerEntry(
            str(uuid.uuid4()),
            str(item["source"]),
            str(item["destination"]),
            text,
            item.get("date"),
            item.get("ttl"),
            cost,
        )
        self.ledger.append(entry)
        self.messages[entry.id] = entry
        return {"id": entry.id, "state": "2"}

    def _refusal(self, item: dict[str, Any]) -> int | None:
        sender = item.get("source")
        if (
            not isinstance(sender, str)
            or not (_SENDER_LATIN.fullmatch(sender) or _SENDER_DIGITS.fullmatch(sender))
            or (self.senders is not None and sender not in self.senders)
        ):
            return -11
        phone = item.get("destination")
        if not isinstance(phone, str) or not _NUMBER.fullmatch(phone):
            return -12
        if phone in self.rejected_numbers:
            return self.rejected_numbers[phone]
        if not isinstance(item.get("text"), str) or not item["text"]:
            return -14
        date = item.get("date")
        if date is not None:
            try:
                datetime.strptime(str(date), "%d.%m.%Y %H:%M:%S")
            except ValueError:
                return -15
        ttl = item.get("ttl")
        if ttl is not None and not (str(ttl).isdigit() and int(ttl) > 0):
            return -16
        return None

    def _check(self, item: dict[str, Any]) -> dict[str, str]:
        message_id = str(item.get("id") or "")
        entry = self.messages.get(message_id)
        if entry is None:
            return {"id": message_id, "state": "-10"}
        state = entry.state
        # Each look moves a message one step on: waiting → sent → delivered.
        if state in (2, 3):
            entry.state = state + 1
        return {"id": message_id, "state": str(state)}

    # -- replies -------------------------------------------------------------------

    def _reply(
        self, request: FakeRequest, endpoint: str, fmt: str, reply: dict[str, Any]
    ) -> Outcome:
        if fmt == "json":
            body = json.dumps(reply, ensure_ascii=False).encode()
            return Outcome("reply", 200, body, {"content-type": "application/json; charset=utf-8"})
        root = {"send": "sendSMS", "credit": "getBalance"}.get(endpoint)
        if root is None:
            # The document shows the GET status reply under sendSMS, the POST one under checkSMS.
            root = "sendSMS" if request.method == "GET" else "checkSMS"
        inner = [f"<state>{reply['state']}</state>"]
        if "balance" in reply:
            inner.append(f"<balance>{reply['balance']}</balance>")
        if "data" in reply:
            messages = "".join(
                f"<message><id>{escape(e['id'])}</id><state>{e['state']}</state></message>"
                for e in reply["data"]
            )
            inner.append(f"<data>{messages}</data>")
        body = f"<{root}{_XMLNS}>{''.join(inner)}</{root}>".encode()
        return Outcome("reply", 200, body, {"content-type": "application/xml; charset=utf-8"})
