"""Blocking twins of the gateway clients: the async client runs in a loop of its own.

Each blocking client keeps its constructor options and builds the async client inside
its own event-loop thread on first use, so that client is bound to that loop. Every
method is one trip into the loop (``_run``); the signatures are spelled out for
readers and IDEs, and the work is the async twin's. Anything else that needs the
async client in its loop (campaigns, later) goes through ``_run`` and ``_iterate``
the same way.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import httpx

from aiosms._client import DEFAULT_MAX_CONCURRENCY, Format, HttpMethod
from aiosms._errors import ClosedError, ValidationError
from aiosms._models import Balance, Message, Profile, Receipt, StatusReport
from aiosms._providers.mysms import DEFAULT_BASE_URL as MYSMS_URL
from aiosms._providers.mysms import DEFAULT_PACKET_SIZE
from aiosms._providers.mysms import MySms as AsyncMySms
from aiosms._providers.thousandsms import DEFAULT_BASE_URL as THOUSANDSMS_URL
from aiosms._providers.thousandsms import ThousandSms as AsyncThousandSms
from aiosms._retry import RetryPolicy
from aiosms._secret import Secret as _Secret
from aiosms._sharded import ProxyArg, VerifyArg
from aiosms._transport import DEFAULT_TIMEOUT, Transport
from aiosms.sync._loop import LoopThread

__all__ = ["MySms", "SyncClient", "ThousandSms", "loop_of", "open_batchers", "unopened_twin"]

T = TypeVar("T")
TimeoutArg = float | httpx.Timeout | None
Backend = Literal["asyncio", "trio"]


class _AsyncClient(Protocol):
    """What a blocking client forwards to: both async gateway clients."""

    async def __aenter__(self) -> Any: ...
    async def aclose(self) -> None: ...
    async def send(self, message: Message, *, timeout: TimeoutArg = None) -> Receipt: ...
    async def send_many(
        self, messages: Iterable[Message], *, timeout: TimeoutArg = None
    ) -> list[Receipt]: ...
    async def status(self, message_id: str, *, timeout: TimeoutArg = None) -> StatusReport: ...
    async def status_many(
        self, message_ids: Iterable[str], *, timeout: TimeoutArg = None
    ) -> list[StatusReport]: ...
    async def balance(self, *, timeout: TimeoutArg = None) -> Balance: ...


C = TypeVar("C", bound=_AsyncClient)

_CALLER_OWNED = ("http_client", "http_transport")


async def _open(cls: Callable[..., C], options: dict[str, Any]) -> C:
    kwargs = dict(options)
    kwargs["password"] = kwargs["password"].value
    client = cls(**kwargs)
    await client.__aenter__()
    return client


async def _close(client: _AsyncClient) -> None:
    await client.aclose()


class SyncClient(Generic[C]):
    """What both blocking clients share: the loop thread, lifecycle and the calls."""

    _async_class: ClassVar[Callable[..., Any]]

    def __init__(
        self, options: dict[str, Any], backend: str, backend_options: dict[str, Any] | None
    ) -> None:
        if backend not in ("asyncio", "trio"):
            raise ValidationError("backend", "must be 'asyncio' or 'trio'")
        if backend == "trio" and options.get("transport") == "aiohttp":
            raise ValidationError("transport", "the aiohttp transport runs on asyncio only")
        # Built here only to check the options now, in the caller's thread, as the async
        # client does; it never sends. The working client is built inside the loop.
        self._template: C = type(self)._async_class(**options)
        options["password"] = _Secret(options["password"])
        transport = options.get("transport")
        caller_owned = any(options.get(k) is not None for k in _CALLER_OWNED) or (
            transport is not None and not isinstance(transport, str)
        )
        name = f"aiosms.sync.{type(self).__name__}-{id(self):x}"
        cls = type(self)._async_class
        # Nothing the loop holds refers back to this object, so it can be collected.
        self._loop: LoopThread[C] = LoopThread(
            lambda: _open(cls, options),
            _close,
            backend=backend,
            backend_options=backend_options,
            name=name,
            survives_fork=not caller_owned,
            refusal=(
                f"{type(self).__name__} was started in another process (before a fork) "
                "around an http_client or transport you supplied, whose connections that "
                "process shares: nothing was sent. Create the client in each worker process."
            ),
        )
        self._entered = False
        self._batchers: weakref.WeakSet[Any] = weakref.WeakSet()
        # Closes a forgotten client when it is collected or at interpreter exit, with a
        # bounded wait; it holds the loop, never the client, so collection can happen.
        self._finalizer = weakref.finalize(self, self._loop.close_at_exit)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self: T) -> T:
        client: SyncClient[Any] = self  # type: ignore[assignment]
        if client._entered and not client.closed:
            raise RuntimeError(f"{type(self).__name__} is already open: enter it only once")
        if client.closed:
            raise ClosedError(f"{type(self).__name__} is closed: create a new client")
        client._entered = True
        client._loop.get()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close open Batchers, wait for calls in flight, close the connection pool and
        end the loop's thread. Safe to call twice, from any thread."""
        for batcher in list(self._batchers):
            batcher.close()
        self._loop.close()
        self._finalizer.detach()

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run (or the ``with`` block has ended)."""
        return self._loop.closed

    @property
    def backend(self) -> str:
        """The event loop the client runs on in its thread: ``"asyncio"`` or ``"trio"``."""
        return self._loop.backend

    # -- options, as the async client has them ---------------------------------------

    @property
    def sender(self) -> str | None:
        """The default sender name (None: each message must name one)."""
        return self._template.sender  # type: ignore[attr-defined, no-any-return]

    @property
    def base_url(self) -> str:
        """The gateway's access point, ending in ``/``."""
        return self._template.base_url  # type: ignore[attr-defined, no-any-return]

    @property
    def format(self) -> Format:
        """``"json"`` or ``"xml"``."""
        return self._template.format  # type: ignore[attr-defined, no-any-return]

    @property
    def method(self) -> HttpMethod:
        """``"POST"`` or ``"GET"``."""
        return self._template.method  # type: ignore[attr-defined, no-any-return]

    @property
    def max_concurrency(self) -> int:
        """Requests in flight in ``send_many`` / ``status_many``."""
        return self._template.max_concurrency  # type: ignore[attr-defined, no-any-return]

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy for reads (and provably unsent sends)."""
        return self._template.retry  # type: ignore[attr-defined, no-any-return]

    def __repr__(self) -> str:
        return repr(self._template)

    # -- the calls ---------------------------------------------------------------------

    def send(self, message: Message, *, timeout: TimeoutArg = None) -> Receipt:
        """Send one message; return its receipt or raise its typed error.

        Blocking twin of the async client's ``send``: ``ValidationError`` before any
        request, ``ProviderError`` subclasses when the gateway refuses,
        ``TransportError`` when it provably never left, ``DeliveryUnknownError`` when
        it may have (never send that message again blindly).
        """
        return self._run(lambda client: client.send(message, timeout=timeout))

    def send_many(
        self, messages: Iterable[Message], *, timeout: TimeoutArg = None
    ) -> list[Receipt]:
        """Send many messages; one receipt per message, in order (see the async twin's
        ``send_many``). Never raises for a message's own failure: it is the receipt's
        ``error``. The iterable is read here, in the calling thread."""
        batch = list(messages)
        return self._run(lambda client: client.send_many(batch, timeout=timeout))

    def status(self, message_id: str, *, timeout: TimeoutArg = None) -> StatusReport:
        """The state of one message; ``MessageNotFoundError`` for an unknown id."""
        return self._run(lambda client: client.status(message_id, timeout=timeout))

    def status_many(
        self, message_ids: Iterable[str], *, timeout: TimeoutArg = None
    ) -> list[StatusReport]:
        """The states of many messages, in the order asked (see the async twin's
        ``status_many``)."""
        ids = list(message_ids)
        return self._run(lambda client: client.status_many(ids, timeout=timeout))

    def balance(self, *, timeout: TimeoutArg = None) -> Balance:
        """Money on the account."""
        return self._run(lambda client: client.balance(timeout=timeout))

    # -- the way into the loop (for these methods, Batchers and campaigns) -------------

    def _run(self, call: Callable[[C], Awaitable[T]]) -> T:
        """Run ``call(async_client)`` in the client's loop; wait for its outcome."""
        return self._loop.call(call)

    def _iterate(
        self,
        make: Callable[[C, AsyncIterator[Any] | None], AsyncGenerator[T, None]],
        feed: Iterable[Any] | None = None,
        *,
        leftovers: Callable[[list[T]], None] | None = None,
    ) -> Iterator[T]:
        """Iterate here an async generator ``make(async_client, source)`` run in the
        loop; ``feed`` is read in this thread and reaches it as ``source``."""
        portal, client = self._loop.get()
        return self._loop.iterate(
            lambda source: make(client, source), feed, leftovers=leftovers, portal=portal
        )

    @property
    def _loop_thread(self) -> threading.Thread | None:
        return self._loop.thread


def unopened_twin(client: SyncClient[C]) -> C:
    """The async client built from ``client``'s options in the caller's thread, never
    opened: what something built on a blocking client (a Batcher) checks its own
    options against, before the loop starts."""
    return client._template


def loop_of(client: SyncClient[C]) -> LoopThread[C]:
    """The loop thread ``client`` runs its async twin in: what lives in that loop (a
    Batcher) is opened there, and compares the loop's ``generation`` to know that
    the loop it was opened in is gone (a fork)."""
    return client._loop


def open_batchers(client: SyncClient[Any]) -> weakref.WeakSet[Any]:
    """The Batchers open on ``client``: closing the client closes them first."""
    return client._batchers


class MySms(SyncClient[AsyncMySms]):
    """Blocking client for my-sms.ru: ``aiosms.MySms`` without ``await``.

    >>> sms = aiosms.sync.MySms(username="u", password="p", sender="MyShop")
    >>> with sms:  # doctest: +SKIP
    ...     receipt = sms.send(aiosms.Message(to="+7 911 222-33-33", text="Привет"))

    Takes the async client's options, plus ``backend`` (``"asyncio"``, the default, or
    ``"trio"``) and ``backend_options`` for its event loop, which runs in a thread of
    its own, started on first use. Safe to share between threads; safe across
    ``fork()`` (a child builds its own loop and pool on first use). Close it with
    ``close()`` or a ``with`` block; a forgotten one is closed at interpreter exit.
    """

    _async_class = AsyncMySms
    provider = AsyncMySms.provider

    def __init__(
        self,
        *,
        username: str,
        password: str,
        sender: str | None = None,
        base_url: str = MYSMS_URL,
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
        backend: Backend = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "username": username,
            "password": password,
            "sender": sender,
            "base_url": base_url,
            "format": format,
            "method": method,
            "timeout": timeout,
            "limits": limits,
            "retry": retry,
            "max_concurrency": max_concurrency,
            "packet_size": packet_size,
            "price": price,
            "max_parts": max_parts,
            "http_client": http_client,
            "http_transport": http_transport,
            "transport": transport,
            "proxy": proxy,
            "verify": verify,
            "trust_env": trust_env,
        }
        super().__init__(options, backend, backend_options)

    @property
    def username(self) -> str:
        """The account's login."""
        return self._template.username

    @property
    def packet_size(self) -> int:
        """Messages per POST packet in ``send_many`` / ``status_many``."""
        return self._template.packet_size

    @property
    def price(self) -> Decimal | None:
        """Your price of one SMS part, for ``Receipt.cost`` (None: no cost)."""
        return self._template.price


class ThousandSms(SyncClient[AsyncThousandSms]):
    """Blocking client for 1000sms.ru: ``aiosms.ThousandSms`` without ``await``.

    >>> with aiosms.sync.ThousandSms(email="me@x.ru", password="p") as sms:  # doctest: +SKIP
    ...     balance = sms.balance()

    Takes the async client's options, plus ``backend`` and ``backend_options`` (see
    ``aiosms.sync.MySms``); the same threading, fork and closing rules.
    """

    _async_class = AsyncThousandSms
    provider = AsyncThousandSms.provider

    def __init__(
        self,
        *,
        email: str,
        password: str,
        sender: str | None = None,
        base_url: str = THOUSANDSMS_URL,
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
        backend: Backend = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "email": email,
            "password": password,
            "sender": sender,
            "base_url": base_url,
            "format": format,
            "method": method,
            "timeout": timeout,
            "limits": limits,
            "retry": retry,
            "max_concurrency": max_concurrency,
            "max_parts": max_parts,
            "http_client": http_client,
            "http_transport": http_transport,
            "transport": transport,
            "proxy": proxy,
            "verify": verify,
            "trust_env": trust_env,
        }
        super().__init__(options, backend, backend_options)

    @property
    def email(self) -> str:
        """The account's e-mail (its login)."""
        return self._template.email

    def profile(self, *, timeout: TimeoutArg = None) -> Profile:
        """The account's profile (``get_profile``)."""
        return self._run(lambda client: client.profile(timeout=timeout))
