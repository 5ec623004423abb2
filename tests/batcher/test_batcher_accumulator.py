"""The Batcher's accumulator on its own: packets sealed when full, on demand, and
after the workers' queue closed (a feeder that took a source in only once the
Batcher was closing). Expected values come from the Batcher's contract: a packet
that no worker will take was never sent, so each of its messages is REJECTED with
``may_have_been_sent`` false, and its places are given back."""

from __future__ import annotations

import math

import anyio
import pytest

import aiosms
from aiosms import DeliveryState, Message
from aiosms._batching._accumulator import Accumulator
from aiosms._batching._packet import Collector, Outlet, Packet
from aiosms._batching._primitives import Window

pytestmark = pytest.mark.anyio


def numbered(i: int) -> Message:
    return Message(to=f"7911{i:07d}", text=f"message {i}", key=i)


def accumulator(max_batch_size: int) -> Accumulator:
    return Accumulator(
        max_batch_size=max_batch_size,
        linger=60,
        outlet=Outlet(Window(100), None),
        prepare=lambda message: message.to,
    )


async def test_a_full_packet_is_sealed_onto_the_queue_with_its_wire_forms() -> None:
    acc = accumulator(max_batch_size=2)
    collector = Collector(100)
    send, receive = anyio.create_memory_object_stream[Packet](math.inf)
    async with anyio.create_task_group() as tg, send, receive:
        acc.start(tg, send)
        assert acc.submit_now(numbered(0), collector)
        assert acc.submit_now(numbered(1), collector)
        assert acc.submit_now(numbered(2), collector)
        packet = receive.receive_nowait()
        assert [m.key for m in packet.messages] == [0, 1]
        assert packet.wires == [numbered(0).to, numbered(1).to]
        assert packet.sealed
        assert [m.key for m in acc.open.messages] == [2]
        assert acc.pending.held == 3
        tg.cancel_scope.cancel()


async def test_packets_sealed_after_the_queue_closed_fail_as_never_sent() -> None:
    acc = accumulator(max_batch_size=2)
    collector = Collector(100)
    send, receive = anyio.create_memory_object_stream[Packet](math.inf)
    async with anyio.create_task_group() as tg, receive:
        acc.start(tg, send)
        acc.close()
        acc.end_queue()
        # What a feeder first run after the Batcher closed its queue does.
        for i in range(5):
            assert acc.submit_now(numbered(i), collector)
        acc.seal()
        tg.cancel_scope.cancel()

    receipts = list(collector.receipts)
    assert [r.message.key for r in receipts] == [0, 1, 2, 3, 4]
    for receipt in receipts:
        assert receipt.state is DeliveryState.REJECTED
        assert isinstance(receipt.error, aiosms.ClosedError)
        assert not receipt.error.may_have_been_sent
    # Five copies of the error, one per message.
    assert len({id(r.error) for r in receipts}) == 5
    assert acc.pending.held == 0
    assert collector.ready.is_set()
