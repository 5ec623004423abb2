"""What every scenario shares: messages, measurements, statistics and tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiosms

#: A realistic one-part OTP in Cyrillic (UCS-2: the JSON and XML bodies carry UTF-8).
TEXT = "Код подтверждения: 123456. Никому его не сообщайте."
MYSMS_SENDER = "MyShop"
THOUSANDSMS_SENDER = "sms-tester"
#: Distinct messages kept at once; longer runs cycle through them.
POOL_SIZE = 10_000


def phone(index: int) -> str:
    return f"7916{index % 10_000_000:07d}"


def message_pool(size: int = POOL_SIZE) -> list[aiosms.Message]:
    return [aiosms.Message(to=phone(i), text=TEXT) for i in range(size)]


def take(pool: Sequence[aiosms.Message], start: int, count: int) -> list[aiosms.Message]:
    """``count`` messages from the pool, starting at ``start``, wrapping around."""
    size = len(pool)
    out: list[aiosms.Message] = []
    while len(out) < count:
        at = (start + len(out)) % size
        out.extend(pool[at : at + count - len(out)])
    return out


#: ``send(start, count)`` sends ``count`` messages and returns how many succeeded.
SendFn = Callable[[int, int], Awaitable[int]]


@dataclass
class Sample:
    """One timed run: items done (requests or messages), seconds, and CPU use."""

    items: int
    ok: int
    seconds: float
    client_cpu: float | None = None
    server_cpu: float | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Stat:
    """Repeated samples of one row: the median and the spread."""

    samples: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)

    def add(self, value: float, sample: Sample | None = None) -> None:
        self.samples.append(value)
        if sample is not None and sample.client_cpu is not None:
            self.client_cpu.append(sample.client_cpu)
        if sample is not None and sample.server_cpu is not None:
            self.server_cpu.append(sample.server_cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")


def fmt_rate(value: float) -> str:
    if value != value:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.2f}×"


def fmt_pct(values: list[float]) -> str:
    return f"{statistics.median(values) * 100:.0f}%" if values else "—"


def ratio(num: float, den: float | None) -> float | None:
    if den is None or den != den or den == 0 or num != num:
        return None
    return num / den


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded so it also reads as plain text."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


class CpuMeter:
    """CPU seconds used by this process and the server process over a measurement."""

    def __init__(self, server_cpu: Callable[[], float | None]) -> None:
        self._server_cpu = server_cpu
        self._start = 0.0
        self._client = 0.0
        self._server: float | None = None

    def start(self) -> None:
        self._server = self._server_cpu()
        self._client = time.process_time()
        self._start = time.perf_counter()

    def stop(self, items: int, ok: int) -> Sample:
        seconds = time.perf_counter() - self._start
        client = (time.process_time() - self._client) / seconds if seconds > 0 else None
        server_now = self._server_cpu()
        server = None
        if server_now is not None and self._server is not None and seconds > 0:
            server = (server_now - self._server) / seconds
        return Sample(items, ok, seconds, client, server)
