"""Room in the Batcher (``max_pending``): waiters are served first come, first served,
one freed place wakes one waiter, and no place is ever lost to a cancelled waiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import pytest

import aiosms
from aiosms._batching._primitives import Window
from aiosms.testing import FakeMySms

pytestmark = pytest.mark.anyio


async def test_a_free_place_is_taken_without_waiting() -> None:
    window = Window(2)
    assert window.try_take()
    await window.take()
    assert window.held == 2
    assert not window.try_take()
    window.give(2)
    assert window.held == 0


async def test_freed_places_go_to_the_longest_waiters_in_order() -> None:
    window = Window(1)
    await window.take()
    served: list[int] = []

    async def waiter(number: int) -> None:
        await window.take()
        served.append(number)

    async with anyio.create_task_group() as tg:
        for number in range(5):
            tg.start_soon(waiter, number)
            await anyio.wait_all_tasks_blocked()
        window.give()  # one place: only the first waiter may go
        await anyio.wait_all_tasks_blocked()
        assert served == [0]
        assert window.held == 1
        for _ in range(4):
            window.give()
            await anyio.wait_all_tasks_blocked()
    assert served == [0, 1, 2, 3, 4]
    assert window.held == 1


class TwoWaiters:
    """A full window of one place, and two tasks queued for it in order."""

    def __init__(self) -> None:
        self.window = Window(1)
        self.holding: list[str] = []
        self.first, self.second = anyio.CancelScope(), anyio.CancelScope()

    async def _waiter(self, name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await self.window.take()
            self.holding.append(name)

    @asynccontextmanager
    async def queued(self) -> AsyncIterator[None]:
        await self.window.take()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._waiter, "first", self.first)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(self._waiter, "second", self.second)
            await anyio.wait_all_tasks_blocked()
            yield


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    two = TwoWaiters()
    async with two.queued():
        two.first.cancel()
        await anyio.wait_all_tasks_blocked()
        two.window.give()
    assert two.holding == ["second"]
    assert two.window.held == 1


async def test_a_waiter_cancelled_as_its_place_is_handed_leaves_no_place_lost() -> None:
    two = TwoWaiters()
    async with two.queued():
        # The place goes to "first", which is cancelled before it runs again (it may
        # still return from take(), or pass the place on to "second").
        two.window.give()
        two.first.cancel()
        await anyio.wait_all_tasks_blocked()
        # Whichever way the backend resolves that race, exactly one task holds the
        # one place, and nobody is left waiting for a place that is free.
        assert len(two.holding) == 1
        assert two.window.held == 1
        # Its holder gives the place back: if "first" kept it, "second" gets it now.
        two.window.give()
        await anyio.wait_all_tasks_blocked()
    assert two.holding in (["second"], ["first", "second"])
    # Every holder but the one that gave back still holds its place: none leaked.
    assert two.window.held == len(two.holding) - 1


async def test_a_waiter_cancelled_just_before_a_place_is_freed_never_gets_it() -> None:
    two = TwoWaiters()
    async with two.queued():
        two.first.cancel()
        two.window.give()
        await anyio.wait_all_tasks_blocked()
    # Whether "first" left the queue before the give or gave the place back after,
    # "second" holds it, and the window counts exactly that one place.
    assert two.holding == ["second"]
    assert two.window.held == 1


async def test_send_callers_beyond_max_pending_are_served_in_call_order() -> None:
    fake = FakeMySms(balance=Decimal(10**6))
    sms = fake.client(sender="MyShop")
    batcher = aiosms.Batcher(sms, max_pending=1, max_batch_size=1)
    async with sms, batcher, anyio.create_task_group() as tg:
        for number in range(8):
            message = aiosms.Message(to=f"7911000000{number}", text=f"#{number}")
            tg.start_soon(batcher.send, message)
            await anyio.wait_all_tasks_blocked()
    assert [entry.text for entry in fake.ledger] == [f"#{n}" for n in range(8)]
