"""The blocking Batcher: shared packets from many threads, and blocking iterators over
``send_all`` and ``track`` that read the source in the caller's thread, lazily."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import msg
from sync_support import mysms, served

import aiosms
from aiosms import DeliveryState, Message, Receipt
from aiosms.testing import FakeMySms, Fault


@pytest.fixture
def fake() -> FakeMySms:
    return FakeMySms(balance=10**6)


@pytest.fixture
def url(fake: FakeMySms) -> Iterator[str]:
    with served(fake) as base_url:
        yield base_url


def test_sends_from_many_threads_share_packets(fake: FakeMySms, url: str) -> None:
    with (
        mysms(fake, url) as sms,
        aiosms.sync.Batcher(sms, max_batch_size=50, linger=0.2) as batcher,
        ThreadPoolExecutor(20) as pool,
    ):
        receipts = list(pool.map(lambda i: batcher.send(msg(f"m{i}")), range(40)))
    assert sorted(r.message.text for r in receipts) == sorted(f"m{i}" for i in range(40))
    assert all(r.state is DeliveryState.QUEUED for r in receipts)
    assert sorted(e.text for e in fake.ledger) == sorted(f"m{i}" for i in range(40))
    # Forty callers, far fewer requests: they went together.
    assert len(fake.calls_to("send")) < 10


def test_send_raises_the_messages_typed_error(fake: FakeMySms, url: str) -> None:
    fake.reject_number("79112223333", -12)
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms) as batcher:
        with pytest.raises(aiosms.RecipientError):
            batcher.send(msg("x"))
        with pytest.raises(TypeError):
            batcher.send("not a message")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_send_all_yields_one_receipt_per_message_reading_the_source_in_this_thread(
    fake: FakeMySms, url: str, backend: str
) -> None:
    readers: set[int] = set()

    def source() -> Iterator[Message]:
        for i in range(1000):
            readers.add(threading.get_ident())
            yield msg(f"m{i}")

    with (
        mysms(fake, url, backend=backend) as sms,
        aiosms.sync.Batcher(sms, max_batch_size=100) as batcher,
    ):
        receipts = list(batcher.send_all(source()))
    assert readers == {threading.get_ident()}
    assert sorted(r.message.text for r in receipts) == sorted(f"m{i}" for i in range(1000))
    assert len(fake.ledger) == 1000
    assert all(r.ok for r in receipts)


def test_send_all_reads_the_source_only_as_fast_as_receipts_are_taken(
    fake: FakeMySms, url: str
) -> None:
    read = 0

    def source() -> Iterator[Message]:
        nonlocal read
        for i in range(100_000):
            read += 1
            yield msg(f"m{i}")

    with (
        mysms(fake, url) as sms,
        aiosms.sync.Batcher(sms, max_batch_size=50, max_pending=200, linger=0.0) as batcher,
    ):
        stream = batcher.send_all(source())
        taken = [next(stream) for _ in range(10)]
        time.sleep(0.3)  # time for the workers to run ahead, if anything let them
        read_after_ten = read
        stream.close()  # type: ignore[attr-defined]
    assert len(taken) == 10
    # Bounded by what may be held at once: max_pending, what waits to be handed over,
    # what one trip takes, and receipts ready ahead of the reader (256).
    assert read_after_ten <= 200 + 64 + 64 + 256 + 10
    # Nothing read was sent twice, and nothing queued after the close went out.
    texts = [e.text for e in fake.ledger]
    assert len(texts) == len(set(texts))
    assert len(texts) <= read_after_ten


def test_a_failing_message_in_send_all_is_its_receipts_error(fake: FakeMySms, url: str) -> None:
    fake.reject_number("79110000000", -12)
    messages = [msg("a"), Message(to="79110000000", text="b"), msg("c")]
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms) as batcher:
        receipts = {r.message.text: r for r in batcher.send_all(messages)}
    assert receipts["a"].ok
    assert receipts["c"].ok
    assert receipts["b"].state is DeliveryState.REJECTED
    assert isinstance(receipts["b"].error, aiosms.RecipientError)


def test_a_source_that_raises_still_gets_the_receipts_of_what_it_gave(
    fake: FakeMySms, url: str
) -> None:
    def source() -> Iterator[Message]:
        for i in range(5):
            yield msg(f"m{i}")
        raise LookupError("the cursor broke")

    got: list[Receipt] = []

    def take_all(stream: Iterator[Receipt]) -> None:
        for receipt in stream:
            got.append(receipt)

    with (
        mysms(fake, url) as sms,
        aiosms.sync.Batcher(sms) as batcher,
        pytest.raises(LookupError, match="the cursor broke"),
    ):
        take_all(batcher.send_all(source()))
    assert sorted(r.message.text for r in got) == [f"m{i}" for i in range(5)]
    assert len(fake.ledger) == 5


def test_breaking_out_of_send_all_withdraws_what_is_queued_and_reports_what_left(
    fake: FakeMySms, url: str
) -> None:
    orphans: list[Receipt] = []
    fake.latency = 0.05
    with (
        mysms(fake, url) as sms,
        aiosms.sync.Batcher(
            sms, max_batch_size=10, max_concurrency=2, linger=0.0, on_receipt=orphans.append
        ) as batcher,
    ):
        taken: list[Receipt] = []
        for receipt in batcher.send_all(msg(f"m{i}") for i in range(5000)):
            taken.append(receipt)
            if len(taken) == 15:
                break
        time.sleep(0.3)
    # Every message that reached the gateway was either taken or reported; none twice.
    sent = [e.text for e in fake.ledger]
    assert len(sent) == len(set(sent))
    assert sorted(sent) == sorted(r.message.text for r in taken + orphans)
    assert len(sent) < 5000


def test_flush_sends_the_open_packet_without_waiting_for_linger(fake: FakeMySms, url: str) -> None:
    with (
        mysms(fake, url) as sms,
        aiosms.sync.Batcher(sms, max_batch_size=100, linger=30.0) as batcher,
        ThreadPoolExecutor(3) as pool,
    ):
        futures = [pool.submit(batcher.send, msg(f"m{i}")) for i in range(3)]
        deadline = time.monotonic() + 5
        while len(batcher._batcher._open) < 3 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        batcher.flush()
        receipts = [f.result(timeout=5) for f in futures]
    assert len(receipts) == 3
    assert [c.messages for c in fake.calls_to("send")] == [3]


def test_track_yields_each_change_until_every_message_is_final(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms) as batcher:
        receipts = [batcher.send(msg(f"m{i}")) for i in range(3)]
        for receipt in receipts:
            assert receipt.message_id is not None
            fake.set_state(receipt.message_id, 4)
        reports = list(batcher.track(receipts, interval=0.01, deadline=10))
    assert sorted(r.message_id for r in reports) == sorted(r.message_id for r in receipts)  # type: ignore[type-var]
    assert {r.state for r in reports} == {DeliveryState.DELIVERED}


def test_a_batcher_must_be_entered_and_is_closed_after_its_block(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms:
        batcher = aiosms.sync.Batcher(sms)
        with pytest.raises(RuntimeError, match="enter the Batcher first"):
            batcher.send(msg("x"))
        with batcher:
            pass
        assert batcher.closed
        with pytest.raises(aiosms.ClosedError):
            batcher.send(msg("x"))
        with pytest.raises(RuntimeError), batcher:
            pass
    assert fake.ledger == []


def test_closing_the_client_closes_its_open_batcher_after_sending_what_it_holds(
    fake: FakeMySms, url: str
) -> None:
    sms = mysms(fake, url)
    batcher = aiosms.sync.Batcher(sms, linger=30.0).__enter__()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(batcher.send, msg("held"))
        deadline = time.monotonic() + 5
        while not batcher._batcher._open.messages and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        sms.close()
        receipt = pending.result(timeout=5)
    assert receipt.ok
    assert batcher.closed
    assert [e.text for e in fake.ledger] == ["held"]


def test_bad_batcher_options_and_an_async_client_are_refused_at_construction(
    fake: FakeMySms, url: str
) -> None:
    with mysms(fake, url) as sms:
        with pytest.raises(aiosms.ValidationError) as caught:
            aiosms.sync.Batcher(sms, linger=-1)
        assert caught.value.field == "linger"
    with pytest.raises(TypeError, match=r"aiosms\.Batcher"):
        aiosms.sync.Batcher(fake.client())  # type: ignore[arg-type]


def test_an_unknown_outcome_in_a_packet_is_each_messages_receipt_never_resent(
    fake: FakeMySms, url: str
) -> None:
    fake.faults.add(Fault.reset_after(), endpoint="send")
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms, max_batch_size=5) as batcher:
        receipts = list(batcher.send_all(msg(f"m{i}") for i in range(5)))
    assert {r.state for r in receipts} == {DeliveryState.UNKNOWN}
    assert all(isinstance(r.error, aiosms.DeliveryUnknownError) for r in receipts)
    assert fake.received["send"] == 1
    assert len(fake.ledger) == 5


def test_closing_the_client_ends_an_unfinished_track_with_closed_error(
    fake: FakeMySms, url: str
) -> None:
    outcome: list[BaseException | None] = []
    sms = mysms(fake, url)
    batcher = aiosms.sync.Batcher(sms).__enter__()
    receipt = batcher.send(msg("never final"))
    # Every status request fails in passing: tracking would go on for the deadline's hour.
    fake.faults.add(Fault.http_status(503), times=10_000, endpoint="status")
    stream = batcher.track([receipt], interval=0.05, deadline=3600)

    def read() -> None:
        try:
            list(stream)
        except aiosms.ClosedError as error:
            outcome.append(error)
        else:  # pragma: no cover - the stream cannot end by itself within the test
            outcome.append(None)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    sms.close()
    reader.join(10)
    assert time.monotonic() - started < 5
    assert not reader.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], aiosms.ClosedError)
    assert fake.received["status"] >= 1


def test_closing_the_client_mid_send_all_hands_untaken_receipts_to_on_receipt(
    fake: FakeMySms, url: str
) -> None:
    orphans: list[Receipt] = []
    sms = mysms(fake, url)
    batcher = aiosms.sync.Batcher(
        sms, max_batch_size=20, linger=0.0, on_receipt=orphans.append
    ).__enter__()
    stream = batcher.send_all(msg(f"m{i}") for i in range(100_000))
    taken = [next(stream) for _ in range(5)]
    time.sleep(0.3)  # receipts pile up ahead of the reader, up to its bound
    sms.close()
    with pytest.raises(aiosms.ClosedError):
        taken.extend(stream)
    sent = [e.text for e in fake.ledger]
    assert len(sent) == len(set(sent))
    assert sorted(sent) == sorted(r.message.text for r in taken + orphans)
    assert len(sent) < 100_000


def test_send_all_with_make_turns_a_bad_row_into_a_rejected_receipt_and_goes_on(
    fake: FakeMySms, url: str
) -> None:
    rows = [("1", "79112223333"), ("2", "12"), ("3", "79112223334")]
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms) as batcher:
        receipts = list(
            batcher.send_all(rows, make=lambda row: Message(to=row[1], text="hi", key=row[0]))
        )
    by_key = {r.message.key: r for r in receipts}
    assert sorted(by_key) == ["1", "2", "3"]
    assert by_key["2"].state is DeliveryState.REJECTED
    assert isinstance(by_key["2"].error, aiosms.ValidationError)
    assert by_key["2"].error.key == "2"
    assert {by_key["1"].state, by_key["3"].state} == {DeliveryState.QUEUED}
    assert sorted(e.phone for e in fake.ledger) == ["79112223333", "79112223334"]
