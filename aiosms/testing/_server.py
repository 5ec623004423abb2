"""A small HTTP/1.1 server on 127.0.0.1 that carries a fake gateway's outcomes.

Written on anyio streams so it runs in the test's own event loop under asyncio
and trio alike, and so faults can be real: a dropped connection is a TCP reset
(SO_LINGER 0), a stall holds the socket open. Keep-alive, Content-Length bodies
only: what httpx and aiohttp send. ``serve_in_thread`` runs it instead on an event
loop of its own in a thread, for callers that have no loop to share (sync pytest
fixtures, which then work under any async test plugin, or none).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.from_thread import start_blocking_portal
from anyio.streams.buffered import BufferedByteReceiveStream

from aiosms.testing._gateway import FakeGateway, FakeRequest, Outcome

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_MAX_HEAD = 64 * 1024


class LoopbackServer:
    """Serves ``gateway`` on 127.0.0.1 (or ``host``) until the context exits; ``port`` is the
    bound port."""

    def __init__(self, gateway: FakeGateway, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.gateway = gateway
        self.port = port
        self.host = host
        self._context: AbstractAsyncContextManager[None] = self._run()

    async def __aenter__(self) -> LoopbackServer:
        await self._context.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._context.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        listener = await anyio.create_tcp_listener(
            local_host=self.host, local_port=self.port, reuse_port=False
        )
        self.port = listener.extra(SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._serve_connection)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _serve_connection(self, stream: SocketStream) -> None:
        gateway = self.gateway
        gateway.open_connections += 1
        reader = BufferedByteReceiveStream(stream)
        try:
            while True:
                try:
                    head = await reader.receive_until(b"\r\n\r\n", _MAX_HEAD)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound):
                    return
                method, target, headers = _parse_head(head)
                if method is None:
                    await _write(stream, 400, b"bad request", {}, close=True)
                    return
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.receive_exactly(length) if length else b""
                url = urlsplit(target)
                path = url.path
                if path.startswith(gateway.prefix):
                    path = path[len(gateway.prefix) :]
                request = FakeRequest(
                    method,
                    path,
                    dict(parse_qsl(url.query, keep_blank_values=True)),
                    body,
                    headers.get("content-type", ""),
                )
                outcome, hung_up, pipelined = await _handle_watching(gateway, request, stream)
                if hung_up or outcome is None:
                    return
                if outcome.action != "reply":
                    _reset_on_close(stream)
                    return
                # Clients here never pipeline; if one did, answer and close.
                close = pipelined or headers.get("connection", "").lower() == "close"
                await _write(stream, outcome.status, outcome.body, outcome.headers, close=close)
                if close:
                    return
        except (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.IncompleteRead,
            OSError,
        ):
            return
        finally:
            gateway.open_connections -= 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()


@contextmanager
def serve_in_thread(gateway: FakeGateway, *, port: int = 0) -> Iterator[str]:
    """Serve ``gateway`` on 127.0.0.1 from a thread with its own event loop; yield the base URL.

    The caller's code (and its event loop, if any) only talks to the fake over a real
    socket, so it may run on asyncio, trio or no loop at all, under any test plugin.
    The fake's state (ledger, calls, faults) is shared plain Python data: read it
    once the client's call has returned.
    """
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(gateway.serve(port=port)) as base_url,
    ):
        yield base_url


async def _handle_watching(
    gateway: FakeGateway, request: FakeRequest, stream: SocketStream
) -> tuple[Outcome | None, bool, bool]:
    """Run the gateway while watching the socket, so a client that hangs up
    (after its own timeout, say) frees the connection at once, not after a stall."""
    outcome: Outcome | None = None
    hung_up = pipelined = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal hung_up, pipelined
            try:
                await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                hung_up = True
                tg.cancel_scope.cancel()
                return
            pipelined = True

        tg.start_soon(watch)
        outcome = await gateway.handle(request)
        tg.cancel_scope.cancel()
    return outcome, hung_up, pipelined


def _parse_head(head: bytes) -> tuple[str | None, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None, "", {}
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


async def _write(
    stream: SocketStream, status: int, body: bytes, headers: Mapping[str, str], *, close: bool
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    extra = dict(headers)
    extra.setdefault("content-type", "text/plain; charset=utf-8")
    for name, value in extra.items():
        lines.append(f"{name}: {value}")
    lines.append(f"content-length: {len(body)}")
    lines.append("connection: close" if close else "connection: keep-alive")
    await stream.send("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)


def _reset_on_close(stream: SocketStream) -> None:
    # SO_LINGER with a zero timeout turns close() into a TCP reset: a real drop.
    raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
    with suppress(OSError):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
