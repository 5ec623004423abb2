"""A fast fake gateway for benchmarks, run in a process of its own on 127.0.0.1.

Raw ``asyncio.Protocol``, HTTP/1.1 keep-alive, Content-Length bodies only (what httpx
and aiohttp send). It speaks just the calls the benchmarks make, with the replies'
documented shapes (as ``aiosms.testing`` does), and keeps no ledger, so a million
messages cost it no memory:

- my-sms ``POST /rest/sms/send/json`` and ``/send/xml``: the packet is parsed, and the
  reply has one ``{id, state}`` entry per message (state 2, or -12/-14 for a message
  with no valid number or no text; -1 for the whole request on wrong credentials);
- 1000sms ``POST /`` form ``method=push_msg&format=json|xml``: ``msg.err_code`` 0 and
  ``data`` with ``id``, ``credits``, ``n_raw_sms`` and ``sender_name`` (or err_code 2/7);
- ``GET /__stats``: requests and messages served so far, as JSON.

An optional latency delays every reply with ``loop.call_later``, so waiting costs no
CPU. The process pins itself to one CPU if asked, and stops on SIGTERM, when its
standard input closes (its parent is gone) or after ``--max-seconds``.

The parent side is ``ServerProcess``: start it, read its port, stop it by its handle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl

# Credentials the fake accepts; the benchmarks' clients use them.
MYSMS_USER = "bench-user"
MYSMS_PASSWORD = "bench-password"
THOUSANDSMS_EMAIL = "bench@example.com"
THOUSANDSMS_PASSWORD = "bench-password"

#: The repository root: where ``python -m benchmarks...`` finds the package.
ROOT = Path(__file__).resolve().parent.parent
_MAX_HEAD = 64 * 1024
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required"}
_JSON = b"application/json; charset=utf-8"
_XML = b"application/xml; charset=utf-8"
_TEXT = b"text/plain; charset=utf-8"
_XMLNS = b' xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
_OK_TEXT = "Выполнено успешно."
_PUSH_JSON = (
    '{"msg":{"err_code":"0","text":"' + _OK_TEXT + '","type":"message"},'
    '"data":{"id":%d,"credits":"2.5","n_raw_sms":1,"sender_name":"%s"}}'
)
_PUSH_XML = (
    '<?xml version="1.0" encoding="utf-8"?>\n<response><msg><err_code>0</err_code>'
    "<text>" + _OK_TEXT + "</text><type>message</type></msg><data><id>%d</id>"
    "<credits>2.5</credits><n_raw_sms>1</n_raw_sms><sender_name>%s</sender_name></data>"
    "</response>"
)
_THOUSAND_ERRORS = {2: "Неверный логин и(или) пароль.", 7: "Заданы не все необходимые параметры."}

Reply = tuple[int, bytes, bytes]


class Gateway:
    """What the server answers; no I/O here, so it is easy to check by hand."""

    def __init__(self) -> None:
        self.requests = 0
        self.messages = 0
        self.connections = 0
        self._ids = itertools.count(1)
        self._push_ids = itertools.count(4_000_001)

    def handle(self, method: bytes, target: bytes, body: bytes) -> Reply:
        self.requests += 1
        path = target.split(b"?", 1)[0]
        try:
            if method == b"POST" and path in (b"/", b"/index.php"):
                return self._thousandsms(body)
            if method == b"POST" and path == b"/rest/sms/send/json":
                return self._mysms_json(body)
            if method == b"POST" and path == b"/rest/sms/send/xml":
                return self._mysms_xml(body)
            if method == b"GET" and path == b"/__stats":
                stats = {
                    "requests": self.requests,
                    "messages": self.messages,
                    "connections": self.connections,
                }
                return 200, _JSON, json.dumps(stats).encode()
        except (ValueError, TypeError, KeyError, AttributeError, ET.ParseError):
            return 400, _TEXT, b"bad request"
        return 404, _TEXT, b"not found"

    # -- my-sms ----------------------------------------------------------------------

    def _entry_state(self, destination: object, text: object) -> int:
        if not isinstance(destination, str) or not destination.isdigit():
            return -12
        if not 10 <= len(destination) <= 15:
            return -12
        if not isinstance(text, str) or not text:
            return -14
        return 2

    def _next_id(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._ids):012x}"

    def _mysms_json(self, body: bytes) -> Reply:
        payload = json.loads(body)
        auth = payload["auth"]
        if (auth.get("username"), auth.get("password")) != (MYSMS_USER, MYSMS_PASSWORD):
            return 200, _JSON, b'{"state":"-1"}'
        entries = []
        for item in payload.get("data") or ():
            state = self._entry_state(item.get("destination"), item.get("text"))
            if state == 2:
                self.messages += 1
                entries.append(f'{{"id":"{self._next_id()}","state":"2"}}')
            else:
                entries.append(f'{{"id":"","state":"{state}"}}')
        return 200, _JSON, ('{"state":"0","data":[' + ",".join(entries) + "]}").encode()

    def _mysms_xml(self, body: bytes) -> Reply:
        root = ET.fromstring(body)
        user = root.findtext("auth/username")
        password = root.findtext("auth/password")
        if (user, password) != (MYSMS_USER, MYSMS_PASSWORD):
            return 200, _XML, b"<sendSMS" + _XMLNS + b"><state>-1</state></sendSMS>"
        entries = []
        for item in root.iterfind("data/message"):
            state = self._entry_state(item.findtext("destination"), item.findtext("text"))
            if state == 2:
                self.messages += 1
                entries.append(f"<message><id>{self._next_id()}</id><state>2</state></message>")
            else:
                entries.append(f"<message><id></id><state>{state}</state></message>")
        inner = "<state>0</state><data>" + "".join(entries) + "</data>"
        return 200, _XML, b"<sendSMS" + _XMLNS + b">" + inner.encode() + b"</sendSMS>"

    # -- 1000sms ---------------------------------------------------------------------

    def _thousandsms(self, body: bytes) -> Reply:
        args = dict(parse_qsl(body.decode(), keep_blank_values=True))
        xml = args.get("format", "").lower() != "json"
        if args.get("method") != "push_msg" or not args.get("phone") or not args.get("text"):
            return self._thousand_error(7, xml)
        if (args.get("email"), args.get("password")) != (THOUSANDSMS_EMAIL, THOUSANDSMS_PASSWORD):
            return self._thousand_error(2, xml)
        self.messages += 1
        sender = args.get("sender_name") or "sms-tester"
        if xml:
            return 200, _XML, (_PUSH_XML % (next(self._push_ids), sender)).encode()
        return 200, _JSON, (_PUSH_JSON % (next(self._push_ids), sender)).encode()

    def _thousand_error(self, code: int, xml: bool) -> Reply:
        text = _THOUSAND_ERRORS[code]
        if xml:
            body = (
                '<?xml version="1.0" encoding="utf-8"?>\n<response><msg>'
                f"<err_code>{code}</err_code><text>{text}</text><type>error</type></msg>"
                "<data></data></response>"
            )
            return 200, _XML, body.encode()
        body = f'{{"msg":{{"err_code":"{code}","text":"{text}","type":"error"}},"data":[]}}'
        return 200, _JSON, body.encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse each request as its bytes complete, answer in order."""

    def __init__(self, gateway: Gateway, latency: float) -> None:
        self.gateway = gateway
        self.latency = latency
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.gateway.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while self.transport is not None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._respond(400, _TEXT, b"header too large", close=True)
                return
            head = bytes(buffer[:end]).lower()
            if b"\r\ntransfer-encoding:" in head:
                self._respond(411, _TEXT, b"Content-Length bodies only", close=True)
                return
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            # The method and path keep their case; only the header block is lowered.
            line = bytes(buffer[: buffer.find(b"\r\n")])
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            method, target, _ = line.split(b" ", 2)
            status, content_type, payload = self.gateway.handle(method, target, body)
            self._respond(status, content_type, payload, close=b"\r\nconnection: close" in head)

    def _respond(self, status: int, content_type: bytes, body: bytes, *, close: bool) -> None:
        response = b"".join(
            (
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                % (status, _REASONS[status], content_type, len(body)),
                b"connection: close\r\n\r\n" if close else b"\r\n",
                body,
            )
        )
        if self.latency > 0:
            self.loop.call_later(self.latency, self._write, response, close)
        else:
            self._write(response, close)

    def _write(self, response: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()


async def serve(latency: float, max_seconds: float, port: int = 0) -> None:
    loop = asyncio.get_running_loop()
    gateway = Gateway()
    stop = asyncio.Event()
    server = await loop.create_server(
        lambda: _Connection(gateway, latency), "127.0.0.1", port, backlog=1024
    )
    bound = server.sockets[0].getsockname()[1]
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def watch_parent() -> None:
        # The parent holds our stdin: when it goes, so do we.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_parent, daemon=True).start()
    print(f"PORT {bound}", flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)
    with contextlib.suppress(BrokenPipeError):  # the parent may be gone already
        print(f"STATS {gateway.requests} {gateway.messages} {gateway.connections}", flush=True)


def pin_to_cpu(cpu: int) -> str:
    """Pin this process to ``cpu``; say what was done (or why not)."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        return "not pinned (os.sched_setaffinity is not available here)"
    count = os.cpu_count() or 1
    if cpu >= count:
        return f"not pinned (CPU {cpu} does not exist: {count} CPU(s))"
    try:
        setaffinity(0, {cpu})
    except OSError as error:
        return f"not pinned ({error})"
    return f"pinned to CPU {cpu}"


class ServerProcess:
    """The benchmark server in a child process; stopped by its handle on exit, whatever happens.

    >>> with ServerProcess(latency=0.0, cpu=0) as server:  # doctest: +SKIP
    ...     url = server.url
    """

    def __init__(self, *, latency: float = 0.0, cpu: int | None = 0, max_seconds: float = 1800):
        self.latency = latency
        self.cpu = cpu
        self.max_seconds = max_seconds
        self.port = 0
        self.pinning = "not pinned"
        #: Requests, messages and connections served, once stopped.
        self.stats: tuple[int, int, int] | None = None
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "benchmarks._server",
            "--latency",
            str(self.latency),
            "--max-seconds",
            str(self.max_seconds),
        ]
        if self.cpu is not None:
            command += ["--cpu", str(self.cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        try:
            started = self._read_port()
        except BaseException:
            self.stop()
            raise
        if not started:
            self.stop()
            raise RuntimeError("the benchmark server did not start")
        return self

    def _read_port(self) -> bool:
        assert self._process is not None
        assert self._process.stdout is not None
        for _ in range(2):
            line = self._process.stdout.readline()
            if line.startswith("PIN "):
                self.pinning = line[4:].strip()
            elif line.startswith("PORT "):
                self.port = int(line.split()[1])
                return True
        return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            out, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return
        for line in out.splitlines():
            if line.startswith("STATS "):
                _, requests, messages, connections = line.split()
                self.stats = (int(requests), int(messages), int(connections))

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server has used so far (Linux), else None."""
        return process_cpu_seconds(self.pid)


def process_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description="aiosms benchmark gateway (127.0.0.1 only)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop after this long")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.cpu is not None:
        print(f"PIN {pin_to_cpu(args.cpu)}", flush=True)
    asyncio.run(serve(args.latency, args.max_seconds, args.port))


if __name__ == "__main__":
    main()
