"""my-sms.ru: the client, a facade over the my-sms codec and a transport.

Options, lifecycle and the public calls; requests are built and replies parsed by
``MySmsCodec`` (``_mysms_codec``), and sent under the send policy by the base
client. POST carries packets of many messages; GET one per request (and the
password in the URL, which is why POST is the default).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs
import httpx

from aiosms import _validation as v
from aiosms._client import DEFAULT_MAX_CONCURRENCY, BaseClient
from aiosms._client_options import Endpoint
from aiosms._errors import ValidationError
from aiosms._gateway import Format, HttpMethod, TimeoutArg
from aiosms._models import Balance
from aiosms._providers._mysms_codec import (
    CODES,
    DEFAULT_BASE_URL,
    DEFAULT_PACKET_SIZE,
    PROVIDER,
    MySmsCodec,
)
from aiosms._retry import RetryPolicy
from aiosms._sharded import ProxyArg, VerifyArg
from aiosms._transport import DEFAULT_TIMEOUT, Transport
from aiosms._validation import positive_int

__all__ = ["CODES", "DEFAULT_BASE_URL", "DEFAULT_PACKET_SIZE", "MySms"]


@attrs.frozen(slots=True)
class _Account:
    """my-sms's own options, checked, and the codec they make with the endpoint."""

    username: str
    packet_size: int
    price: Decimal | None

    @classmethod
    def checked(
        cls, username: str, sender: str | None, packet_size: int, price: object
    ) -> _Account:
        """Refuse a bad login, sender name, packet size or price, before any request."""
        if not isinstance(username, str) or not username:
            raise ValidationError("username", "must be a non-empty string")
        if sender is not None:
            v.check_mysms_sender(v.check_sender_type(sender) or "")
        positive_int(packet_size, "packet_size")
        return cls(username, packet_size, v.optional(v.non_negative_amount, price, "price"))

    def codec(self, at: Endpoint) -> MySmsCodec:
        """The my-sms codec of this account at that endpoint."""
        return MySmsCodec(
            base_url=at.base_url,
            format=at.format,
            method=at.method,
            username=self.username,
            password=at.password,
            sender=at.sender,
            price=self.price,
            max_parts=at.max_parts,
        )


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
    #: The account's login.
    username: str
    #: Messages per POST packet in ``send_many`` / ``status_many``.
    packet_size: int
    #: Your price of one SMS part: my-sms publishes none, so receipts have a
    #: ``cost`` (price × parts) only when you give it.
    price: Decimal | None
    _codec: MySmsCodec

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
        account = _Account.checked(username, sender, packet_size, price)
        super().__init__(
            codec=account.codec,
            password=password,
            sender=sender,
            base_url=base_url,
            format=format,
            method=method,
            max_parts=max_parts,
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
        self.price = account.price

    def __repr__(self) -> str:
        return (
            f"MySms(username={self.username!r}, sender={self.sender!r}, "
            f"format={self.format!r}, method={self.method!r}, base_url={self.base_url!r})"
        )

    async def balance(self, *, timeout: TimeoutArg = None) -> Balance:
        """Money on the account (the gateway's decimal comma becomes a ``Decimal``)."""
        codec = self._codec
        return await self._read(
            codec.balance_request(), codec.parse_balance, what="balance", timeout=timeout
        )

    @property
    def _send_many_size(self) -> int:
        return self.packet_size if self.method == "POST" else 1
