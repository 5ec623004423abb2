"""1000sms.ru: the client, a facade over the 1000sms codec and a transport.

Options, lifecycle and the public calls (``send``, ``status``, ``profile``,
``balance``); requests are built and replies parsed by ``ThousandSmsCodec``
(``_thousandsms_codec``), and sent under the send policy by the base client.
There are no packets: ``send_many`` and ``status_many`` run one request per item,
concurrently.
"""

from __future__ import annotations

from typing import Literal

import attrs
import httpx

from aiosms import _validation as v
from aiosms._client import DEFAULT_MAX_CONCURRENCY, BaseClient
from aiosms._client_options import Endpoint
from aiosms._errors import ValidationError
from aiosms._gateway import Format, HttpMethod, TimeoutArg
from aiosms._models import Balance, Profile
from aiosms._providers._thousandsms_codec import (
    CODES,
    DEFAULT_BASE_URL,
    PROVIDER,
    STATES,
    ThousandSmsCodec,
    parse_balance,
    parse_gateway_date,
)
from aiosms._retry import RetryPolicy
from aiosms._sharded import ProxyArg, VerifyArg
from aiosms._transport import DEFAULT_TIMEOUT, Transport

__all__ = ["CODES", "DEFAULT_BASE_URL", "STATES", "ThousandSms", "parse_gateway_date"]


@attrs.frozen(slots=True)
class _Account:
    """1000sms's own options, checked, and the codec they make with the endpoint."""

    email: str

    @classmethod
    def checked(cls, email: str, sender: str | None) -> _Account:
        """Refuse a bad login or sender name, before any request."""
        if not isinstance(email, str) or not email.strip():
            raise ValidationError("email", "must be a non-empty string")
        if sender is not None:
            v.check_thousandsms_sender(v.check_sender_type(sender) or "")
        return cls(email)

    def codec(self, at: Endpoint) -> ThousandSmsCodec:
        """The 1000sms codec of this account at that endpoint."""
        return ThousandSmsCodec(
            base_url=at.base_url,
            format=at.format,
            method=at.method,
            email=self.email,
            password=at.password,
            sender=at.sender,
            max_parts=at.max_parts,
        )


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
    #: The account's e-mail (its login).
    email: str
    _codec: ThousandSmsCodec

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
        account = _Account.checked(email, sender)
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
        self.email = email

    def __repr__(self) -> str:
        return (
            f"ThousandSms(email={self.email!r}, sender={self.sender!r}, "
            f"format={self.format!r}, method={self.method!r}, base_url={self.base_url!r})"
        )

    async def profile(self, *, timeout: TimeoutArg = None) -> Profile:
        """The account as ``get_profile`` describes it, every documented field."""
        self._check_open()
        codec = self._codec
        return await self._read(
            codec.profile_request(), codec.parse_profile, what="profile", timeout=timeout
        )

    async def balance(self, *, timeout: TimeoutArg = None) -> Balance:
        """Money on the account: the profile's ``credits`` in its ``currency``."""
        return parse_balance(await self.profile(timeout=timeout))
