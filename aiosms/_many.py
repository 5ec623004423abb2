"""Many messages or ids at once: packets fanned out over a fixed set of workers.

``send_many`` and ``status_many`` of every client, as functions of the packet
entry point (``_send_packet``) and the status request of one chunk: each packet's
failure stays its own, and an account-level refusal stops the packets not yet
started (their messages fail as not sent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio

from aiosms._errors import MessageNotFoundError, SmsError, ValidationError
from aiosms._gateway import PacketSender, TimeoutArg
from aiosms._models import DeliveryState, Message, Receipt, StatusReport
from aiosms._outcomes import (
    failed,
    not_sent,
    require_id,
    require_message,
    stops_the_flow,
    unexpected,
    unexpected_read,
)

__all__ = ["fan_out", "send_many", "status_many"]


async def send_many(
    client: PacketSender, messages: Iterable[Message], timeout: TimeoutArg
) -> list[Receipt]:
    """One receipt per message, in order (see ``BaseClient.send_many``)."""
    batch = list(messages)
    for message in batch:
        require_message(message)
    client._check_open()
    receipts: list[Receipt | None] = [None] * len(batch)
    ready: list[tuple[int, Message, Any]] = []
    for index, message in enumerate(batch):
        try:
            ready.append((index, message, client._prepare(message)))
        except ValidationError as invalid:
            receipts[index] = failed(message, invalid.with_traceback(None))
    size = client._send_many_size
    packets = [ready[i : i + size] for i in range(0, len(ready), size)]
    stop: list[SmsError] = []

    async def send_packet(number: int) -> None:
        packet = packets[number]
        if stop:
            for index, message, _ in packet:
                receipts[index] = failed(message, not_sent(stop[0]))
            return
        messages = [m for _, m, _ in packet]
        try:
            results = await client._send_packet(messages, [w for _, _, w in packet], timeout)
        except Exception as error:
            # The adapters keep their failures to their packet; should one slip
            # through, it must not cancel the other packets or lose their receipts.
            results = unexpected(client.provider, messages, error)
        for (index, _, _), receipt in zip(packet, results, strict=True):
            receipts[index] = receipt
            if stops_the_flow(receipt.error) and not stop:
                stop.append(receipt.error)

    await fan_out(len(packets), send_packet, client._in_flight_limit)
    done = [r for r in receipts if r is not None]
    assert len(done) == len(batch), "every message has exactly one receipt"
    return done


async def status_many(
    client: PacketSender, message_ids: Iterable[str], timeout: TimeoutArg
) -> list[StatusReport]:
    """One report per id, in order (see ``BaseClient.status_many``)."""
    ids = [require_id(i) for i in message_ids]
    client._check_open()
    size = client._status_many_size
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    results: list[list[StatusReport]] = [[] for _ in chunks]
    stop: list[SmsError] = []

    async def ask(number: int) -> None:
        chunk = chunks[number]
        error: SmsError
        if stop:
            error = stop[0].clone()
        else:
            try:
                reports = await client._status_batch(chunk, timeout)
            except SmsError as caught:
                error = caught.with_traceback(None)
                if stops_the_flow(error) and not stop:
                    stop.append(error)
            except Exception as caught:
                # A surprise keeps to its own ids, never cancels the other requests.
                error = unexpected_read(client.provider, "status", caught)
            else:
                results[number] = reports
                return
        results[number] = [_failed_report(i, error, len(chunk)) for i in chunk]

    await fan_out(len(chunks), ask, client._in_flight_limit)
    return [report for chunk in results for report in chunk]


def _failed_report(message_id: str, error: SmsError, asked: int) -> StatusReport:
    """The report of an id whose request failed as a whole."""
    # "Not found" for a request about this id alone is this id's final answer; for a
    # request about several, nobody can tell which of them the gateway meant.
    found_missing = isinstance(error, MessageNotFoundError) and asked == 1
    state = DeliveryState.REJECTED if found_missing else DeliveryState.UNKNOWN
    # No code: a report's code is the message's state, and the request never gave one.
    return StatusReport(message_id, state, error=error.clone())


async def fan_out(count: int, work: Callable[[int], Awaitable[None]], limit: int) -> None:
    """Run ``work(i)`` for i in range(count) with at most ``limit`` at once.

    A fixed set of worker tasks pulls indexes from one shared iterator: cheaper than
    a task and a semaphore acquisition per item. ``work`` must not raise anything but
    cancellation: one item's exception would cancel every other item in flight, so
    each item records its own failure instead.
    """
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            await work(index)

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, count)):
            tg.start_soon(worker)
