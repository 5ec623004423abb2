"""my-sms.ru: the ``send/``, ``status/`` and ``credit/`` calls, JSON or XML, POST or GET.

Builds requests and parses replies; the network is the base client's. POST carries
packets of many messages; GET carries one per request (and the password in the
URL, which is why POST is the default). Every documented code is in ``CODES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast

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
    positive_int,
)
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
from aiosms._models import Balance, DeliveryState, Message, Receipt, StatusReport
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
from aiosms._wire import STRUCTURE_ERRORS, converter, to_int, to_str

__all__ = ["CODES", "DEFAULT_BASE_URL", "MySms"]

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


converter.register_structure_hook_func(lambda t: t == list[_Entry], _structure_entries)


class MySms(BaseClient):
    """Client for my-sms.ru.

    >>> async with MySms(username="u", password="p", sender="MyShop") as sms:  # doctest: +SKIP
    ...     receipt = await sms.send(Message(to="+7 911 222-33-33", text="Привет"))

    Options: ``format`` ("json" or "xml"), ``method`` ("POST", the default, or "GET",
    which puts the password in the URL), ``packet_size`` (messages per POST packet
    in ``send_many``/``status_many``), ``price`` (your price of one SMS part, for
    ``Receipt.cost``: my-sms publishes none), ``max_parts`` (refuse, before any
    request, a text that needs more SMS parts; None, the default, sets no limit),
    ``max_concurrency`` (requests in flight),
    ``timeout``, ``limits`` (the pool's total, split over small httpx pools; by
    default one connection per request in flight), ``retry``, ``proxy`` (a proxy
    URL), ``verify`` (a CA bundle path or an ``ssl.SSLContext``), ``trust_env``
    (True to honour ``HTTPS_PROXY``, ``SSL_CERT_FILE`` and the like), and at most one
    of ``http_client`` (yours, used as is and never closed by aiosms), ``http_transport``
    (an httpx transport for aiosms's own client, such as a fake gateway's) or
    ``transport`` (``"aiohttp"`` for the optional aiohttp transport, asyncio only and
    POST only, or an ``aiosms.AiohttpTransport``).
    """

    provider = PROVIDER

    def __init__(
        self,
        *,
        username: str,
        password: str,
        sender: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        format: Format = "json",
        method: HttpMethod = "POST",
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        packet_size: int = DEFAULT_PACKET_SIZE,
        price: Decimal | int | str | None = None,
        max_parts: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        transport: Transport | Literal["aiohttp"] | None = None,
        proxy: ProxyArg = None,
        verify: VerifyArg = True,
        trust_env: bool = False,
    ) -> None:
        if not isinstance(username, str) or not username:
            raise ValidationError("username", "must be a non-empty string")
        if sender is not None:
            v.check_mysms_sender(v.check_sender_type(sender) or "")
        positive_int(packet_size, "packet_size")
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
        self.username = username
        self.packet_size = packet_size
        # The last sender name that passed the rules, and its JSON form: a campaign
        # repeats one, so it is checked and encoded once.
        self._checked_sender: tuple[str, str] | None = None
        #: Your price of one SMS part: my-sms publishes none, so receipts have a
        #: ``cost`` (price × parts) only when you give it.
        self.price = _price(price)
        content_type = "application/json" if self.format == "json" else "application/xml"
        self._headers = {"content-type": f"{content_type}; charset=utf-8"}
        # Decided once: a message's wire form is made when it is taken in (a Batcher
        # does that long before its packet is built), so both must agree on the form.
        self._json_packets = self.format == "json" and self.method == "POST"

    def __repr__(self) -> str:
        return (
            f"MySms(username={self.username!r}, sender={self.sender!r}, "
            f"format={self.format!r}, method={self.method!r}, base_url={self.base_url!r})"
        )

    # -- public calls ------------------------------------------------------------

    async def send(self, message: Message, *, timeout: TimeoutArg = None) -> Receipt:
        """Send one message; return its receipt or raise its typed error.

        Raises ``ValidationError`` before any request, ``ProviderError`` subclasses
        when the gateway refuses, ``TransportError`` when it provably never left and
        ``DeliveryUnknownError`` when it may have.
        """
        require_message(message)
        self._check_open()
        wire = self._prepare(message)
        (receipt,) = await self._send_batch([message], [wire], timeout)
        if receipt.error is not None:
            raise receipt.error
        return receipt

    async def status(self, message_id: str, *, timeout: TimeoutArg = None) -> StatusReport:
        """The state of one message.

        Raises ``MessageNotFoundError`` for an id the gateway does not know, and
        ``ProtocolError`` when the reply says nothing about it.
        """
        self._check_open()
        (report,) = await self._status_batch([require_id(message_id)], timeout)
        if isinstance(report.error, (MessageNotFoundError, ProtocolError)):
            raise report.error
        return report

    async def balance(self, *, timeout: TimeoutArg = None) -> Balance:
        """Money on the account (the gateway's decimal comma becomes a ``Decimal``)."""
        if self.method == "GET":
            request = WireRequest(
                "GET", self._url(f"credit/{self.format}"), params=self._auth_query()
            )
        elif self.format == "json":
            request = self._post("credit/json", dumps_json({"auth": self._auth()}))
        else:
            request = self._post("credit/xml", dumps_xml("getBalance", {"auth": self._auth()}))
        return await self._read(request, self._parse_balance, what="balance", timeout=timeout)

    # -- what a Batcher drives --------------------------------------------------------

    @property
    def _batch_limit(self) -> int | None:
        # POST takes packets of any size the caller chooses; GET one message.
        return None if self.method == "POST" else 1

    @property
    def _send_many_size(self) -> int:
        return self.packet_size if self.method == "POST" else 1

    def _prepare(self, message: Message) -> _Wire:
        check_parts(message, self.max_parts)
        if self._json_packets:
            return self._json_fragment(message)
        return self._wire_message(message)

    async def _send_batch(
        self, messages: list[Message], wires: list[_Wire], timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send one packet; return one receipt per message and never raise for their failures."""
        try:
            self._check_open()
            response = await self._send(
                self._send_request(wires), messages=messages, what="send", timeout=timeout
            )
            return self._parse_send(response.body, messages)
        except SmsError as error:
            return [failed(m, error.clone()) for m in messages]
        except Exception as error:
            # One packet's surprise is its messages' outcome, never the other packets'.
            return unexpected(PROVIDER, messages, error)

    async def _status_batch(self, ids: list[str], timeout: TimeoutArg) -> list[StatusReport]:
        return await self._read(
            self._status_request(ids),
            lambda body: self._parse_status(body, ids),
            what="status",
            timeout=timeout,
        )

    # -- requests ----------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"username": self.username, "password": self._password.value}

    def _auth_query(self) -> dict[str, str]:
        return {"u": self.username, "p": self._password.value}

    def _post(self, path: str, body: bytes) -> WireRequest:
        return WireRequest("POST", self._url(path), content=body, headers=self._headers)

    def _sender_of(self, message: Message) -> tuple[str, str]:
        """The message's sender name, checked, and its JSON string form."""
        sender = message.sender or self.sender
        if sender is None:
            raise ValidationError("sender", "no sender on the message or the client")
        checked = self._checked_sender
        if checked is None or sender is not checked[0]:
            v.check_mysms_sender(sender)
            checked = self._checked_sender = (sender, encode_json_string(sender))
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
        """The message as its JSON object in a packet, encoded once, when it is taken in.

        A packet body is then a join of strings: no dict per message, and no walk of
        a thousand of them at send time.
        """
        fragment = (
            f'{{"source":{self._sender_of(message)[1]},"destination":'
            f'{encode_json_string(message.to)},"text":{encode_json_string(message.text)}'
        )
        if message.at is not None:
            fragment += f',"date":{encode_json_string(v.moscow_time(message.at))}'
        if message.ttl is not None:
            fragment += f',"ttl":{encode_json_string(str(message.ttl))}'
        return fragment + "}"

    def _send_request(self, wires: Sequence[_Wire]) -> WireRequest:
        if self.method == "GET":
            (wire,) = wires
            assert isinstance(wire, dict)
            params = self._auth_query() | {
                "s": wire["source"],
                "d": wire["destination"],
                "t": wire["text"],
            }
            params.update((key, wire[key]) for key in ("date", "ttl") if key in wire)
            return WireRequest("GET", self._url(f"send/{self.format}"), params=params)
        if self._json_packets:
            # Every wire form is a fragment here: _prepare decides on the same flag,
            # and format and method cannot change after construction.
            head = dumps_json({"auth": self._auth()})[:-1]
            data = ",".join(cast("Sequence[str]", wires)).encode()
            return self._post("send/json", b"".join((head, b',"data":[', data, b"]}")))
        body = dumps_xml("sendSMS", {"auth": self._auth(), "data": {"message": list(wires)}})
        return self._post("send/xml", body)

    def _status_request(self, ids: Sequence[str]) -> WireRequest:
        if self.method == "GET":
            (message_id,) = ids
            params = self._auth_query() | {"id": message_id}
            return WireRequest("GET", self._url(f"status/{self.format}"), params=params)
        data = [{"id": i} for i in ids]
        if self.format == "json":
            return self._post("status/json", dumps_json({"auth": self._auth(), "data": data}))
        body = dumps_xml("checkSMS", {"auth": self._auth(), "data": {"message": data}})
        return self._post("status/xml", body)

    # -- replies -----------------------------------------------------------------

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

    def _parse_send(self, body: bytes, messages: list[Message]) -> list[Receipt]:
        try:
            content = self._decode(body)
            state = _request_state(content)
            data = content["data"]
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise _unreadable(messages) from None
        if state != 0:
            known = CODES.get(state)
            if state in INTERNAL or known is None or known.error is None:
                raise DeliveryUnknownError(
                    f"my-sms send: request status {state}; the gateway may have "
                    "accepted the message(s)",
                    messages=messages,
                    kind=f"status {state}",
                )
            raise provider_error(state)
        if not isinstance(data, list):
            raise _unreadable(messages)
        if len(data) != len(messages):
            raise DeliveryUnknownError(
                f"my-sms send: {len(data)} results for {len(messages)} messages; "
                "no result can be matched to its message",
                messages=messages,
                kind="wrong reply length",
            )
        # One pass from the reply's entries straight to receipts: this runs once per
        # message of a campaign, so no record per entry on the way.
        receipts: list[Receipt] = []
        append = receipts.append
        sender, price = self.sender, self.price
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

    def _parse_status(self, body: bytes, ids: list[str]) -> list[StatusReport]:
        try:
            content = self._decode(body)
            state = _request_state(content)
        except (WireFormatError, *STRUCTURE_ERRORS):
            raise ProtocolError("my-sms status: the reply could not be read") from None
        if state != 0:
            raise provider_error(state)
        try:
            entries = converter.structure(content["data"], list[_Entry])
        except STRUCTURE_ERRORS:
            raise ProtocolError("my-sms status: the reply's entries could not be read") from None
        by_id = {e.id: e for e in entries if e.id}
        # An entry with a blank id (the gateway may blank an id it does not know) is
        # matched by position to the ids not found by id, and only when the counts
        # agree; an entry naming an id that was not asked about is never used.
        blank = [e for e in entries if not e.id]
        missing = [i for i in ids if i not in by_id]
        by_position = dict(zip(missing, blank, strict=True)) if len(blank) == len(missing) else {}
        return [_report(i, by_id.get(i) or by_position.get(i)) for i in ids]

    def _parse_balance(self, body: bytes) -> Balance:
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
            return Balance(converter.structure(amount, Decimal), None)
        except (*STRUCTURE_ERRORS, ArithmeticError):
            raise ProtocolError("my-sms balance: the balance could not be read") from None


def _unreadable(messages: list[Message]) -> DeliveryUnknownError:
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


def _price(value: Decimal | int | str | None) -> Decimal | None:
    return v.optional(v.non_negative_amount, value, "price")


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
