"""One blocking client: many threads, one loop thread, closed cleanly, never hanging exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sync_support import loop_threads, mysms, served

import aiosms
from aiosms import Message
from aiosms.sync._loop import EXIT_GRACE
from aiosms.testing import FakeMySms, Fault


@pytest.fixture
def fake() -> FakeMySms:
    return FakeMySms(balance=10**6)


@pytest.fixture
def url(fake: FakeMySms) -> Iterator[str]:
    with served(fake) as base_url:
        yield base_url


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fifty_threads_sending_through_one_client_send_each_message_exactly_once(
    fake: FakeMySms, url: str, backend: str
) -> None:
    texts = [f"message {i}" for i in range(500)]
    with mysms(fake, url, backend=backend) as sms, ThreadPoolExecutor(50) as pool:
        receipts = list(pool.map(lambda t: sms.send(Message(to="79112223333", text=t)), texts))
        # A single loop thread served all of them.
        assert [t.name for t in loop_threads()] == [sms._loop_thread.name]  # type: ignore[union-attr]
    assert [r.message.text for r in receipts] == texts
    assert all(r.ok for r in receipts)
    assert Counter(e.text for e in fake.ledger) == Counter(texts)
    assert len({r.message_id for r in receipts}) == 500


def test_the_loop_thread_starts_on_first_use_and_is_gone_after_close(
    fake: FakeMySms, url: str
) -> None:
    before = set(loop_threads())
    sms = mysms(fake, url)
    assert set(loop_threads()) == before
    sms.balance()
    thread = sms._loop_thread
    assert thread is not None
    assert thread.is_alive()
    assert thread.daemon
    sms.close()
    assert not thread.is_alive()
    assert set(loop_threads()) == before
    assert sms.closed
    sms.close()  # twice is harmless


def test_with_starts_the_loop_and_its_end_closes_the_client(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms:
        thread = sms._loop_thread
        assert thread is not None
        assert thread.is_alive()
    assert not thread.is_alive()
    assert sms.closed


def test_a_closed_client_refuses_calls_as_not_sent(fake: FakeMySms, url: str) -> None:
    sms = mysms(fake, url)
    sms.close()
    with pytest.raises(aiosms.ClosedError) as caught:
        sms.send(Message(to="79112223333", text="Hi"))
    assert caught.value.may_have_been_sent is False
    with pytest.raises(aiosms.ClosedError), sms:
        pass
    assert fake.ledger == []
    assert sms._loop_thread is None


def test_entering_twice_is_refused(fake: FakeMySms, url: str) -> None:
    with mysms(fake, url) as sms, pytest.raises(RuntimeError, match="only once"), sms:
        pass


def test_close_waits_for_calls_in_flight_from_other_threads(fake: FakeMySms, url: str) -> None:
    fake.faults.add(Fault.latency(0.5), endpoint="send")
    sms = mysms(fake, url)
    sms.balance()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(sms.send, Message(to="79112223333", text="in flight"))
        deadline = time.monotonic() + 5
        while fake.received["send"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        sms.close()
        receipt = pending.result(timeout=5)
    assert receipt.ok
    assert [e.text for e in fake.ledger] == ["in flight"]


def test_a_forgotten_client_is_closed_when_collected(fake: FakeMySms, url: str) -> None:
    import gc

    sms = mysms(fake, url)
    sms.balance()
    thread = sms._loop_thread
    assert thread is not None
    del sms
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_the_blocking_api_called_inside_its_own_loop_says_so(fake: FakeMySms, url: str) -> None:
    # As an on_receipt hook would, if it called the blocking client.
    async def inside(_: object) -> object:
        return sms.balance()

    with mysms(fake, url) as sms, pytest.raises(RuntimeError, match="own event loop thread"):
        sms._run(inside)
    assert fake.received["credit"] == 0


def _run(script: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done, time.monotonic() - started


def test_interpreter_exit_with_an_unclosed_client_does_not_hang(fake: FakeMySms, url: str) -> None:
    done, _ = _run(
        f"""
        import aiosms
        sms = aiosms.sync.MySms(username="test-user", password="test-password",
                                sender="MyShop", base_url={url!r})
        print(sms.send(aiosms.Message(to="79112223333", text="from a script")).state.name)
        """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "QUEUED"
    assert [e.text for e in fake.ledger] == ["from a script"]


def test_interpreter_exit_with_a_send_stuck_in_flight_ends_within_the_grace(
    fake: FakeMySms, url: str
) -> None:
    fake.faults.add(Fault.stall(40), endpoint="send")
    done, took = _run(
        f"""
        import threading, time
        import aiosms
        sms = aiosms.sync.MySms(username="test-user", password="test-password",
                                sender="MyShop", base_url={url!r}, timeout=60)
        sms.balance()
        threading.Thread(
            target=sms.send, args=(aiosms.Message(to="79112223333", text="stuck"),), daemon=True
        ).start()
        time.sleep(0.5)
        print("leaving")
        """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "leaving"
    # The exit waits at most the grace for the call in flight (stalled for 40 s), then
    # goes on; process start-up and the first request take the rest.
    assert took < EXIT_GRACE + 10


class SoftTimeLimit(Exception):
    """Stands for Celery's SoftTimeLimitExceeded, raised from a SIGUSR1 handler too."""


def test_a_send_interrupted_by_a_signal_goes_out_once_and_its_receipt_is_logged(
    fake: FakeMySms, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise SoftTimeLimit

    fake.faults.add(Fault.latency(0.6), endpoint="send")
    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with caplog.at_level("WARNING", "aiosms.sync"), mysms(fake, url) as sms:
            sms.balance()
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
            timer.start()
            with pytest.raises(SoftTimeLimit):
                sms.send(Message(to="79112223333", text="interrupted"))
            timer.join()
            # close() waits for the send, which goes on in the loop after the interrupt.
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert [e.text for e in fake.ledger] == ["interrupted"]
    (record,) = [r for r in caplog.records if r.name == "aiosms.sync"]
    assert "after its caller stopped waiting" in record.getMessage()
    assert "queued" in record.getMessage().lower()
