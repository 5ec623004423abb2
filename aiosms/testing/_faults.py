"""Faults a fake gateway can be told to inject, and the plan that hands them out."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import Literal

import attrs

FaultKind = Literal[
    "latency",
    "http_status",
    "refuse",
    "reset_before",
    "reset_after",
    "truncated",
    "empty",
    "html",
    "malformed",
    "wrong_count",
    "internal_error",
    "stall",
]


@attrs.frozen(slots=True)
class Fault:
    """One injected fault. Build it with the class methods:

    - ``Fault.latency(s)``: answer normally, ``s`` seconds late.
    - ``Fault.http_status(503, retry_after="2")``: an HTTP error page; nothing is done.
    - ``Fault.refuse()``: the connection is refused (in process only: a listening
      loopback server cannot refuse; point the client at a closed port instead).
    - ``Fault.reset_before()``: drop the connection before reading the request.
    - ``Fault.reset_after()``: do the work (the ledger records accepted messages),
      then drop the connection without a reply.
    - ``Fault.truncated()``, ``Fault.empty()``, ``Fault.html()``, ``Fault.malformed()``:
      do the work, then send a broken body.
    - ``Fault.wrong_count()``: do the work, then answer with one entry too few.
    - ``Fault.internal_error()``: answer with the gateway's internal error; nothing is done.
    - ``Fault.stall(s)``: wait ``s`` seconds (past a client's read timeout), then answer.
    """

    kind: FaultKind
    seconds: float = 0.0
    status: int = 503
    retry_after: str | None = None

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        return cls("latency", seconds=seconds)

    @classmethod
    def http_status(cls, status: int = 503, *, retry_after: str | None = None) -> Fault:
        return cls("http_status", status=status, retry_after=retry_after)

    @classmethod
    def refuse(cls) -> Fault:
        return cls("refuse")

    @classmethod
    def reset_before(cls) -> Fault:
        return cls("reset_before")

    @classmethod
    def reset_after(cls) -> Fault:
        return cls("reset_after")

    @classmethod
    def truncated(cls) -> Fault:
        return cls("truncated")

    @classmethod
    def empty(cls) -> Fault:
        return cls("empty")

    @classmethod
    def html(cls) -> Fault:
        return cls("html")

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def wrong_count(cls) -> Fault:
        return cls("wrong_count")

    @classmethod
    def internal_error(cls) -> Fault:
        return cls("internal_error")

    @classmethod
    def stall(cls, seconds: float = 60.0) -> Fault:
        return cls("stall", seconds=seconds)


#: Every kind that a real socket can carry, for chaos runs.
CHAOS_FAULTS: tuple[Fault, ...] = (
    Fault.latency(0.05),
    Fault.http_status(500),
    Fault.http_status(502),
    Fault.http_status(503, retry_after="0"),
    Fault.reset_before(),
    Fault.reset_after(),
    Fault.truncated(),
    Fault.empty(),
    Fault.html(),
    Fault.malformed(),
    Fault.wrong_count(),
    Fault.internal_error(),
)


class FaultPlan:
    """Which request gets which fault.

    Queued faults come first, in order (optionally only for one endpoint, such as
    ``"send"``); after them, each request draws a random fault with probability
    ``rate`` when chaos is on.

    >>> plan = FaultPlan()
    >>> plan.add(Fault.http_status(503), times=2, endpoint="status")
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[Fault, str | None]] = deque()
        self._rate = 0.0
        self._choices: Sequence[Fault] = ()
        self._random = random.Random(0)
        self._endpoints: frozenset[str] | None = None

    def add(self, fault: Fault, *, times: int = 1, endpoint: str | None = None) -> None:
        """Queue ``fault`` for the next ``times`` requests (to ``endpoint`` if given)."""
        self._queue.extend([(fault, endpoint)] * times)

    def chaos(
        self,
        rate: float,
        faults: Sequence[Fault] = CHAOS_FAULTS,
        *,
        seed: int = 0,
        endpoints: Sequence[str] | None = None,
    ) -> None:
        """Hit a fraction ``rate`` of requests with a fault drawn from ``faults``."""
        self._rate = rate
        self._choices = tuple(faults)
        self._random = random.Random(seed)
        self._endpoints = frozenset(endpoints) if endpoints is not None else None

    def clear(self) -> None:
        self._queue.clear()
        self._rate = 0.0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def take(self, endpoint: str) -> Fault | None:
        for position, (fault, only) in enumerate(self._queue):
            if only is None or only == endpoint:
                del self._queue[position]
                return fault
        chaotic = self._rate and (self._endpoints is None or endpoint in self._endpoints)
        if chaotic and self._random.random() < self._rate:
            return self._random.choice(self._choices)
        return None
