"""my-sms.ru on the wire: requests built and replies parsed, with no I/O.

A ``MySmsCodec`` is the client's frozen wire configuration (format, method,
credentials behind ``Secret``, sender, price) and its methods are pure functions
of it: prepare a message, build a send, status or balance request, parse each
reply into models. POST carries packets of many messages; GET carries one per
request (and the password in the URL, which is why POST is the default). Every
documented code is in ``CODES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple, cast

import attrs
import cattrs

from aiosms import _validation as v
from aiosms._codecs import (
    WireFormatError,
    dumps_json,
    dumps_xml,
    encode_json_string,
    loads_json,
    loads_xml,
)
from aiosms._errors import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayError,
    InsufficientFundsError,
    MessageNotFoundError,
    ProtocolError,
    ProviderError,
    RecipientError,
    ScheduleError,
    SenderError,
    SmsError,
    ValidationError,
)
from aiosms._gateway import Format, HttpMethod
from aiosms._models import Balance, DeliveryState, Message, Receipt, StatusReport
from aiosms._outcomes import check_parts
from aiosms._secret import Secret
from aiosms._segments import count_parts
from aiosms._transport import WireRequest
from aiosms._wire import STRUCTURE_ERRORS, make_converter, to_int, to_str

__all__ = ["CODES", "DEFAULT_BASE_URL", "DEFAULT_PACKET_SIZE", "INTERNAL", "MySmsCodec"]

PROVIDER = "my-sms"
DEFAULT_BASE_URL = "https://my-sms.ru/rest/sms/"
DEFAULT_PACKET_SIZE = 100


@attrs.frozen(slots=True)
class Code:
    """One documented code: a request status, or a message state."""

    description: str
    state: DeliveryState | None = None
    error: type[ProviderError] | None = None


#: Every code the my-sms document lists, request statuses and message states alike
#: (the two sets do not overlap).
CODES: dict[int, Code] = {
    0: Code("request completed"),
    -1: Code("authorization error", error=AuthenticationError),
    -50: Code("internal server error", error=GatewayError),
    -51: Code("internal server error", error=GatewayError),
    -52: Code("internal server error", error=GatewayError),
    2: Code("waiting to be sent to the operator", state=DeliveryState.QUEUED),
    3: Code("sent to the operator", state=DeliveryState.SENT),
    4: Code("delivered", state=DeliveryState.DELIVERED),
    -10: Code("invalid message id", error=MessageNotFoundError),
    -11: Code("invalid or unregistered sender name", error=SenderError),
    -12: Code("invalid recipient number", error=RecipientError),
    -13: Code("insufficient funds to send the message", error=InsufficientFundsError),
    -14: Code("error sending the message", error=GatewayError),
    -15: Code("invalid send date format", error=ScheduleError),
    -16: Code("invalid message TTL", error=ScheduleError),
}
#: The gateway's own failures: a send that gets one may or may not have gone out.
INTERNAL = frozenset({-50, -51, -52})
#: The codes of a message the gateway took, and the state each means.
_ACCEPTED = {code: known.state for code, known in CODES.items() if known.state is not None}


def provider_error(code: int) -> ProviderError:
    known = CODES.get(code)
    cls = known.error if known and known.error else GatewayError
    text = known.description if known else "undocumented status"
    return cls(provider=PROVIDER, code=code, text=text, transient=code in INTERNAL)


#: A message's wire form: its JSON object, encoded, for JSON POST packets; its fields
#: otherwise (XML packets, GET parameters).
_Wire = str | dict[str, str]


class _Entry(NamedTuple):
    # A tuple, not an attrs class: a status reply makes one per id, and tuples of
    # plain values drop out of the garbage collector's tracking.
    state: int
    id: str = ""


#: Every documented code as the gateway writes it (a string or a number).
_STATE_CODES: dict[object, int] = {form: code for code in CODES for form in (code, str(code))}


def _request_state(content: dict[str, Any]) -> int:
    """A reply's request status, read from the raw document and nothing else.

    A refusal must be recognised whatever the rest of the reply holds: the payload
    (``data``, ``balance``) is read only once this says the request was done.
    Raises ``STRUCTURE_ERRORS`` when there is no readable status.
    """
    state = content["state"]
    code = _STATE_CODES.get(state) if type(state) in (str, int) else None
    return code if code is not None else to_int(state, int)


def _entry(item: Any) -> tuple[int, str]:
    """An entry of a reply's ``data``: its state code and its id ("" when blank).

    Raises ``STRUCTURE_ERRORS`` for an entry that is not an object with a state.
    """
    state, message_id = item["state"], item.get("id")
    code = _STATE_CODES.get(state) if type(state) in (str, int) else None
    return (
        code if code is not None else to_int(state, int),
        message_id if type(message_id) is str else to_str(message_id, str),
    )


def _structure_entries(value: Any, _: object) -> list[_Entry]:
    # A reply has one entry per message: structured in one plain loop rather than a
    # generated call per entry.
    if not isinstance(value, list):
        raise TypeError("data is not a list")
    return [_Entry(*_entry(item)) for item in value]


def _make_converter() -> cattrs.Converter:
    # The codec's own converter: no hook lands on a converter anyone else shares.
    converter = make_converter()
    converter.register_structure_hook_func(lambda t: t == list[_Entry], _structure_entries)
    return converter


_converter = _make_converter()


class _LastSender:
    """The last sender name that passed the rules, and its JSON form: a campaign
    repeats one, so it is checked and encoded once."""

    __slots__ = ("checked",)

    def __init__(self) -> None:
        self.checked: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return "_LastSender()"


@attrs.frozen(slots=True, eq=False)
class MySmsCodec:
    """my-sms's wire configuration; its methods build requests and parse replies.

    ``base_url`` ends with "/"; ``sender`` and ``price`` (of one SMS part) are the
    client's defaults; ``max_parts`` refuses longer texts before any request.
    """

    base_url: str
    format: Format
    method: HttpMethod
    username: str
    password: Secret
    sender: str | None = None
    price: Decimal | None = None
    max_parts: int | None = None
    #: Whether a prepared message is its encoded JSON object (JSON POST packets).
    #: Decided once: a message's wire form is made when it is taken in (a Batcher does
    #: that long before its packet is built), so both must agree on the form.
    json_packets: bool = attrs.field(init=False, repr=False)
    _headers: dict[str, str] = attrs.field(init=False, repr=False)
    _last_sender: _LastSender = attrs.field(init=False, factory=_LastSender, repr=False)

    provider = PROVIDER

    @json_packets.default
    def _json_packets(self) -> bool:
        return self.format == "json" and self.method == "POST"

    @_headers.default
    def _content_type(self) -> dict[str, str]:
        content_type = "application/json" if self.format == "json" else "application/xml"
        return {"content-type": f"{content_type}; charset=utf-8"}

    @property
    def batch_limit(self) -> int | None:
        """Most messages one send request carries (None: as many as the caller packs)."""
        # POST takes packets of any size the caller chooses; GET one message.
        return None if self.method == "POST" else 1

    # -- messages ------------------------------------------------------------------

    def prepare(self, message: Message) -> _Wire:
        """Check a message against the gateway's rules; return its wire form.

        A JSON packet's messages are encoded here, once, when each is taken in: a
        packet body is then a join of strings.
        """
        check_parts(message, self.max_parts)
        if self.json_packets:
            return self._json_fragment(message)
        return self._wire_message(message)

    def _sender_of(self, message: Message) -> tuple[str, str]:
        """The message's sender name, checked, and its JSON string form."""
        sender = message.sender or self.sender
        if sender is None:
            raise ValidationError("sender", "no sender on the message or the client")
        checked = self._last_sender.checked
        if checked is None or sender is not checked[0]:
            v.check_mysms_sender(sender)
            checked = self._last_sender.checked = (sender, encode_json_string(sender))
        return checked

    def _wire_message(self, message: Message) -> dict[str, str]:
        """The message as the gateway's fields, after the gateway's own rules."""
        sender = self._sender_of(message)[0]
        wire = {"source": sender, "destination": message.to, "text": message.text}
        if message.at is not None:
            wire["date"] = v.moscow_time(message.at)
        if message.ttl is not None:
            wire["ttl"] = str(message.ttl)
        return wire

    def _json_fragment(self, message: Message) -> str:
        """The message as its JSON object in a packet."""
        fragment = (
            f'{{"source":{self._sender_of(message)[1]},"destination":'
            f'{encode_json_string(message.to)},"text":{encode_json_string(message.text)}'
        )
        if message.at is not None:
            fragment += f',"date":{encode_json_string(v.moscow_time(message.at))}'
        if message.ttl is not None:
            fragment += f',"ttl":{encode_json_string(str(message.ttl))}'
        return fragment + "}"

    # -- requests ------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password.value}

    def _auth_query(self) -> dict[str, str]:
        return {"u": self.username, "p": self.password.value}

    def _post(self, path: str, body: bytes) -> WireRequest:
        return WireRequest("POST", self.base_url + path, content=body, headers=self._headers)

    def _get(self, path: str, params: dict[str, str]) -> WireRequest:
        return WireRequest("GET", self.base_url + path, params=self._auth_query() | params)

    def send_request(self, wires: Sequence[_Wire]) -> WireRequest:
        """The request that sends prepared messages (one with GET, a packet with POST)."""
        if self.method == "GET":
            (wire,) = wires
            assert isinstance(wire, dict)
            params = {"s": wire["source"], "d": wire["destination"], "t": wire["text"]}
            params.update((key, wire[key]) for key in ("date", "ttl") if key in wire)
            return self._get(f"send/{self.format}", params)
        if self.json_packets:
            # Every wire form is a fragment here: prepare decides on the same flag.
            head = dumps_json({"auth": self._auth()})[:-1]
            data = ",".join(cast("Sequence[str]", wires)).encode()
            return self._post("send/json", b"".join((head, b',"data":[', data, b"]}")))
        body = dumps_xml("sendSMS", {"auth": self._auth(), "data": {"message": list(wires)}})
        return self._post("send/xml", body)

    def status_request(self, ids: Sequence[str]) -> WireRequest:
        """The request that asks for the states of ``ids`` (one with GET)."""
        if self.method == "GET":
            (message_id,) = ids
            return self._get(f"status/{self.format}", {"id": message_id})
        data = [{"id": i} for i in ids]
        if self.format == "json":
            return self._post("status/json", dumps_json({"auth": self._auth(), "data": data}))
        body = dumps_xml("checkSMS", {"auth": self._auth(), "data": {"message": data}})
        return self._post("status/xml", body)

    def balance_request(self) -> WireRequest:
        """The request that asks for the account's balance."""
        if self.method == "GET":
            return self._get(f"credit/{self.format}", {})
        if self.format == "json":
            return self._post("credit/json", dumps_json({"auth": self._auth()}))
        return self._post("credit/xml", dumps_xml("getBalance", {"auth": self._auth()}))

    # -- replies -------------------------------------------------------------------

    def _decode(self, body: bytes) -> dict[str, Any]:
        if self.format == "json":
            content = loads_json(body)
        else:
            content = loads_xml(body, lists=("message",))
            data = content.get("data")
            # <data><message>…</message>…</data> reads as the JSON list does.
            if isinstance(data, dict):
                content["data"] = data.get("message") or []
        # A refusal may come with "data": null (or none at all): that is no entries,
        # not an unreadable reply.
        if content.get("data") is None:
            content["data"] = []
        return content

    def parse_send(
        self, body: bytes, messages: Sequence[Message], wires: Sequence[_Wire] = ()
    ) -> list[Receipt]:
        """One receipt per message of a packet, matched by position.

        Raises ``DeliveryUnknownError`` for a reply that cannot be matched to the
        packet, and the typed ``ProviderError`` for a refusal of the whole request.
        """
        try:
            content = self._decode(body)
            state = _request_state(content)
            data = content["data"]
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise _unreadable(messages) from None
        if state != 0:
            raise _request_refused(state, messages)
        if not isinstance(data, list):
            raise _unreadable(messages)
        if len(data) != len(messages):
            raise DeliveryUnknownError(
                f"my-sms send: {len(data)} results for {len(messages)} messages; "
                "no result can be matched to its message",
                messages=messages,
                kind="wrong reply length",
            )
        return _receipts(messages, data, self.sender, self.price)

    def parse_status(self, body: bytes, ids: Sequence[str]) -> list[StatusReport]:
        """One report per id asked about, matched by id."""
        try:
            content = self._decode(body)
            state = _request_state(content)
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise ProtocolError("my-sms status: the reply could not be read") from None
        if state != 0:
            raise provider_error(state)
        try:
            entries = _converter.structure(content["data"], list[_Entry])
        except STRUCTURE_ERRORS:
            raise ProtocolError("my-sms status: the reply's entries could not be read") from None
        return _match_reports(ids, entries)

    def parse_balance(self, body: bytes) -> Balance:
        """The account's balance (the gateway's decimal comma becomes a ``Decimal``)."""
        try:
            content = loads_json(body) if self.format == "json" else loads_xml(body)
            state = _request_state(content)
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise ProtocolError("my-sms balance: the reply could not be read") from None
        if state != 0:
            raise provider_error(state)
        amount = content.get("balance")
        if amount is None or amount == "":
            raise ProtocolError("my-sms balance: the reply has no balance")
        try:
            return Balance(_converter.structure(amount, Decimal), None)
        except (*STRUCTURE_ERRORS, ArithmeticError):
            raise ProtocolError("my-sms balance: the balance could not be read") from None


def _request_refused(state: int, messages: Sequence[Message]) -> SmsError:
    """The error of a send request the gateway answered with a non-zero status."""
    known = CODES.get(state)
    if state in INTERNAL or known is None or known.error is None:
        return DeliveryUnknownError(
            f"my-sms send: request status {state}; the gateway may have accepted the message(s)",
            messages=messages,
            kind=f"status {state}",
        )
    return provider_error(state)


def _receipts(
    messages: Sequence[Message], data: list[Any], sender: str | None, price: Decimal | None
) -> list[Receipt]:
    # One pass from the reply's entries straight to receipts: this runs once per
    # message of a campaign, so no record per entry on the way.
    receipts: list[Receipt] = []
    append = receipts.append
    # A campaign's packet repeats its text: count each distinct one once.
    parts: dict[str, int] = {}
    for message, entry in zip(messages, data, strict=True):
        # Only reading the entry may fail here: a bug further on must not pass for
        # an unreadable reply.
        try:
            code, message_id = _entry(entry)
        except STRUCTURE_ERRORS:
            raise _unreadable(messages) from None
        text = message.text
        count = parts.get(text) or parts.setdefault(text, count_parts(text))
        accepted = _ACCEPTED.get(code)
        if accepted is None:
            append(_refused(message, code, message_id, message.sender or sender, count))
            continue
        # Positional: keywords cost a quarter more per receipt, once per message.
        append(
            Receipt(
                message,
                message_id or None,
                accepted,
                None,
                count,
                None if price is None else price * count,
                code,
                message.sender or sender,
            )
        )
    return receipts


def _match_reports(ids: Sequence[str], entries: list[_Entry]) -> list[StatusReport]:
    by_id = {e.id: e for e in entries if e.id}
    # An entry with a blank id (the gateway may blank an id it does not know) is
    # matched by position to the ids not found by id, and only when the counts
    # agree; an entry naming an id that was not asked about is never used.
    blank = [e for e in entries if not e.id]
    missing = [i for i in ids if i not in by_id]
    by_position = dict(zip(missing, blank, strict=True)) if len(blank) == len(missing) else {}
    return [_report(i, by_id.get(i) or by_position.get(i)) for i in ids]


def _unreadable(messages: Sequence[Message]) -> DeliveryUnknownError:
    return DeliveryUnknownError(
        "my-sms send: the reply could not be read; the gateway may have accepted the message(s)",
        messages=messages,
        kind="unreadable reply",
    )


def _refused(
    message: Message, code: int, message_id: str, sender: str | None, parts: int
) -> Receipt:
    """The receipt of a message the gateway did not take, or answered for unclearly."""
    known = CODES.get(code)
    error: SmsError
    if known is not None and known.error is not None and code not in INTERNAL:
        state, error = DeliveryState.REJECTED, provider_error(code)
    else:
        state = DeliveryState.UNKNOWN
        error = DeliveryUnknownError(
            f"my-sms send: message status {code}; the gateway may have accepted it",
            messages=(message,),
            kind=f"status {code}",
        )
    return Receipt(message, message_id or None, state, error, parts, None, code, sender)


def _report(message_id: str, entry: _Entry | None) -> StatusReport:
    if entry is None:
        return StatusReport(
            message_id,
            DeliveryState.UNKNOWN,
            error=ProtocolError("my-sms status: the reply says nothing about this id"),
        )
    known = CODES.get(entry.state)
    if known is not None and known.state is not None:
        return StatusReport(message_id, known.state, entry.state, known.description)
    if known is not None and known.error is not None:
        return StatusReport(
            message_id,
            DeliveryState.REJECTED,
            entry.state,
            known.description,
            provider_error(entry.state),
        )
    return StatusReport(message_id, DeliveryState.UNKNOWN, entry.state, "undocumented state")
