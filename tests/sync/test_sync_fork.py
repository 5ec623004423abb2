"""A blocking client made and used before ``fork()`` works in the child with a loop and a
pool of its own, never touching the parent's; the parent goes on as before.

Celery's prefork pool and gunicorn fork after import; these tests fork the test process
itself (and use multiprocessing's fork start method) with a client already running.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support import msg
from sync_support import mysms, served

import aiosms
from aiosms.testing import FakeMySms, Fault

CHILD_TIMEOUT = 20.0


@pytest.fixture
def fake() -> FakeMySms:
    return FakeMySms(balance=10**6)


@pytest.fixture
def url(fake: FakeMySms) -> Iterator[str]:
    with served(fake) as base_url:
        yield base_url


def _fork() -> int:
    # Python 3.12+ warns that forking a process with threads may deadlock the child:
    # that is the very situation under test, and the child here only uses aiosms.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def in_child(work: Callable[[], str]) -> tuple[int, str]:
    """Run ``work`` in a forked child; return its exit code and what it returned (or the
    repr of what it raised). The child is killed if it runs past ``CHILD_TIMEOUT``."""
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        code = 1
        try:
            os.close(read_end)
            out = work()
            code = 0
        except BaseException as error:
            out = f"{type(error).__name__}: {error}"
        finally:
            os.write(write_end, out.encode())
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + CHILD_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        pytest.fail(f"the child hung for more than {CHILD_TIMEOUT} s")
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    assert status is not None
    return os.waitstatus_to_exitcode(status), out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_child_sends_through_a_loop_and_pool_of_its_own_and_the_parent_goes_on(
    fake: FakeMySms, url: str, backend: str
) -> None:
    sms = mysms(fake, url, backend=backend)
    try:
        assert sms.send(msg("parent before")).ok
        parent_thread = sms._loop_thread
        assert parent_thread is not None

        def child() -> str:
            # The parent's loop thread does not exist here, and must not be waited on.
            assert sms._loop_thread is None
            receipt = sms.send(msg("child"))
            assert sms._loop_thread is not parent_thread
            return f"{receipt.state.name} {sms.balance().amount}"

        code, out = in_child(child)
        assert code == 0, out
        assert out.split()[0] == "QUEUED"
        # The parent's own loop and connections are untouched and still serve it.
        assert sms._loop_thread is parent_thread
        assert sms.send(msg("parent after")).ok
    finally:
        sms.close()
    assert Counter(e.text for e in fake.ledger) == Counter(
        ["parent before", "child", "parent after"]
    )


def test_a_send_in_flight_in_the_parent_at_the_fork_goes_out_once(
    fake: FakeMySms, url: str
) -> None:
    fake.faults.add(Fault.latency(0.5), endpoint="send")
    with mysms(fake, url) as sms, ThreadPoolExecutor(1) as pool:
        sms.balance()
        pending = pool.submit(sms.send, msg("in flight at the fork"))
        deadline = time.monotonic() + 5
        while fake.received["send"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        code, out = in_child(lambda: sms.send(msg("child")).state.name)
        assert pending.result(timeout=10).ok
    assert (code, out) == (0, "QUEUED")
    assert Counter(e.text for e in fake.ledger) == Counter(["in flight at the fork", "child"])


def test_many_messages_from_a_multiprocessing_fork_pool_each_go_out_once(
    fake: FakeMySms, url: str
) -> None:
    sms = mysms(fake, url)
    sms.send(msg("parent"))  # the loop and its pool are running before the fork
    context = multiprocessing.get_context("fork")

    def worker(number: int) -> None:
        for i in range(20):
            sms.send(msg(f"worker {number} message {i}"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        workers = [context.Process(target=worker, args=(n,)) for n in range(3)]
        for process in workers:
            process.start()
    try:
        for process in workers:
            process.join(CHILD_TIMEOUT)
        assert [p.exitcode for p in workers] == [0, 0, 0]
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
                process.join()
    sms.send(msg("parent again"))
    sms.close()
    expected = ["parent", "parent again"] + [
        f"worker {n} message {i}" for n in range(3) for i in range(20)
    ]
    assert Counter(e.text for e in fake.ledger) == Counter(expected)


def test_a_client_around_a_callers_http_transport_refuses_in_the_child(
    fake: FakeMySms, url: str
) -> None:
    sms = mysms(fake, url, http_transport=httpx.AsyncHTTPTransport())
    try:
        assert sms.send(msg("parent")).ok
        code, out = in_child(lambda: sms.send(msg("child")).state.name)
        assert code == 1
        assert out.startswith("ClosedError")
        assert "each worker process" in out
        assert sms.send(msg("parent after")).ok
    finally:
        sms.close()
    assert [e.text for e in fake.ledger] == ["parent", "parent after"]


def test_a_client_around_a_callers_http_transport_not_yet_started_works_in_the_child(
    fake: FakeMySms, url: str
) -> None:
    sms = mysms(fake, url, http_transport=httpx.AsyncHTTPTransport())
    code, out = in_child(lambda: sms.send(msg("child")).state.name)
    sms.close()
    assert (code, out) == (0, "QUEUED")
    assert [e.text for e in fake.ledger] == ["child"]


def test_a_batcher_open_before_the_fork_refuses_in_the_child_and_goes_on_in_the_parent(
    fake: FakeMySms, url: str
) -> None:
    with mysms(fake, url) as sms, aiosms.sync.Batcher(sms) as batcher:
        assert batcher.send(msg("parent")).ok

        def child() -> str:
            try:
                batcher.send(msg("child via batcher"))
            except aiosms.ClosedError as error:
                # The client itself still works in the child.
                return f"refused: {error.may_have_been_sent}; {sms.send(msg('child')).ok}"
            return "sent"

        code, out = in_child(child)
        assert batcher.send(msg("parent after")).ok
    assert (code, out) == (0, "refused: False; True")
    assert Counter(e.text for e in fake.ledger) == Counter(["parent", "child", "parent after"])


def test_a_client_closed_before_the_fork_stays_closed_in_the_child(
    fake: FakeMySms, url: str
) -> None:
    sms = mysms(fake, url)
    sms.send(msg("parent"))
    sms.close()
    code, out = in_child(lambda: sms.send(msg("child")).state.name)
    assert code == 1
    assert out.startswith("ClosedError")
    assert [e.text for e in fake.ledger] == ["parent"]
    assert sms._loop_thread is None
