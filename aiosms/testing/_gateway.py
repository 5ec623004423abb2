"""What every fake gateway shares: requests in, outcomes out, faults, counters.

A fake gateway is a plain object with state. ``handle()`` turns a request into an
``Outcome`` (a reply, or a dropped connection), applying the fault plan around the
gateway's own logic. Two carriers deliver outcomes: an httpx transport in process
(``httpx_transport()``) and a real HTTP/1.1 server on 127.0.0.1 (``serve()``).
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import attrs
import httpx

from aiosms.testing._faults import Fault, FaultPlan

Action = Literal["reply", "refuse", "reset"]


@attrs.frozen(slots=True)
class FakeRequest:
    method: str
    path: str
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""


@attrs.frozen(slots=True)
class Outcome:
    action: Action
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = attrs.Factory(dict)


@attrs.frozen(slots=True)
class CallRecord:
    """One request the fake processed: endpoint (``"send"``…), verb, format, message count."""

    endpoint: str
    method: str
    format: str
    messages: int


_HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class FakeGateway(abc.ABC):
    """Base of the fake gateways: fault plan, latency, call log, in-flight counters."""

    #: Path prefix the gateway serves under (``"/rest/sms/"`` for my-sms).
    prefix: str = "/"
    host: str = "fake.test"

    def __init__(self, *, latency: float = 0.0) -> None:
        self.faults = FaultPlan()
        self.latency = latency
        self.calls: list[CallRecord] = []
        #: Requests that arrived, per endpoint, whatever became of them (faults included).
        self.received: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        #: Sockets the loopback server holds open right now.
        self.open_connections = 0

    @property
    def base_url(self) -> str:
        """The in-process base URL, for clients built on ``httpx_transport()``."""
        return f"http://{self.host}{self.prefix}"

    # -- the gateway's own logic (subclasses) ---------------------------------------

    @abc.abstractmethod
    def endpoint(self, request: FakeRequest) -> str:
        """Name the call (``"send"``, ``"status"``…) for fault plans and the call log."""

    @abc.abstractmethod
    def process(self, request: FakeRequest, fault: Fault | None) -> Outcome:
        """Do what the gateway does. ``fault`` is passed for faults that shape the reply."""

    @abc.abstractmethod
    def internal_error(self, request: FakeRequest) -> Outcome:
        """The gateway's documented internal-error reply for this request."""

    @abc.abstractmethod
    def malformed_body(self, request: FakeRequest) -> bytes:
        """A body in the request's format that stops short of parsing."""

    # -- faults around it -------------------------------------------------------------

    async def handle(self, request: FakeRequest) -> Outcome:
        endpoint = self.endpoint(request)
        self.received[endpoint] += 1
        fault = self.faults.take(endpoint)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await anyio.sleep(self.latency)
            return await self._handle(request, fault)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: FakeRequest, fault: Fault | None) -> Outcome:
        kind = fault.kind if fault else None
        if kind in ("latency", "stall"):
            assert fault is not None
            await anyio.sleep(fault.seconds)
        elif kind == "refuse":
            return Outcome("refuse")
        elif kind == "reset_before":
            return Outcome("reset")
        elif kind == "http_status":
            assert fault is not None
            headers = {"content-type": "text/html"}
            if fault.retry_after is not None:
                headers["retry-after"] = fault.retry_after
            return Outcome("reply", fault.status, _HTML, headers)
        elif kind == "internal_error":
            return self.internal_error(request)
        outcome = self.process(request, fault)
        if kind == "reset_after":
            return Outcome("reset")
        if kind == "truncated":
            return attrs.evolve(outcome, body=outcome.body[: len(outcome.body) // 2])
        if kind == "empty":
            return attrs.evolve(outcome, body=b"")
        if kind == "html":
            return attrs.evolve(outcome, body=_HTML, headers={"content-type": "text/html"})
        if kind == "malformed":
            return attrs.evolve(outcome, body=self.malformed_body(request))
        return outcome

    def record(self, endpoint: str, request: FakeRequest, fmt: str, messages: int) -> None:
        """Log a request the gateway processed (``received`` counts every arrival)."""
        self.calls.append(CallRecord(endpoint, request.method, fmt, messages))

    def calls_to(self, endpoint: str) -> list[CallRecord]:
        return [c for c in self.calls if c.endpoint == endpoint]

    # -- carriers ------------------------------------------------------------------

    def wire(self, options: dict[str, Any]) -> dict[str, Any]:
        """Client options reaching this fake: in process unless a transport or URL is given."""
        options.setdefault("base_url", self.base_url)
        wired = any(k in options for k in ("transport", "http_client", "http_transport"))
        if not wired and options["base_url"] == self.base_url:
            options["http_transport"] = self.httpx_transport()
        return options

    def httpx_transport(self) -> FakeTransport:
        """An httpx transport that serves this fake in process (no sockets)."""
        return FakeTransport(self)

    @asynccontextmanager
    async def serve(self, *, port: int = 0) -> AsyncIterator[str]:
        """Serve this fake over real HTTP on 127.0.0.1; yields the base URL.

        >>> async with fake.serve() as base_url:  # doctest: +SKIP
        ...     async with aiosms.MySms(..., base_url=base_url) as sms: ...
        """
        from aiosms.testing._server import LoopbackServer

        async with LoopbackServer(self, port=port) as server:
            yield f"http://127.0.0.1:{server.port}{self.prefix}"


class FakeTransport(httpx.AsyncBaseTransport):
    """Delivers a fake gateway's outcomes to httpx in process.

    Timeouts are honoured as httpx would over a socket: a reply slower than the
    request's read timeout becomes ``httpx.ReadTimeout``. A refused connection is
    ``httpx.ConnectError``; a dropped one ``httpx.RemoteProtocolError``.
    """

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Report progress as httpcore does, so a client can tell how far a request got.
        trace = request.extensions.get("trace")
        if trace is not None:
            await trace("http11.send_request_headers.started", {"request": request})
        body = await request.aread()
        if trace is not None:
            await trace("http11.receive_response_headers.started", {"request": request})
        prefix = self.gateway.prefix
        path = request.url.path
        fake_request = FakeRequest(
            request.method,
            path[len(prefix) :] if path.startswith(prefix) else path,
            dict(request.url.params),
            body,
            request.headers.get("content-type", ""),
        )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        outcome: Outcome | None = None
        with anyio.move_on_after(read_timeout) as scope:
            outcome = await self.gateway.handle(fake_request)
        if scope.cancelled_caught or outcome is None:
            raise httpx.ReadTimeout("timed out waiting for the fake gateway", request=request)
        if outcome.action == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if outcome.action == "reset":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            outcome.status, headers=dict(outcome.headers), content=outcome.body, request=request
        )
