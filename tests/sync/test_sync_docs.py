"""docs/sync.md's code runs as written, against a fake gateway on 127.0.0.1."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import served

import aiosms
from aiosms.testing import FakeMySms, Fault

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sync.md").read_text(encoding="utf-8")
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", DOC, re.DOTALL)


def run(code: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "sync_doc_example", **names}
    exec(compile(code, "docs/sync.md", "exec"), namespace)
    return namespace


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMySms]:
    """A fake with the document's placeholder credentials; its blocking clients reach it."""
    fake = FakeMySms(username="your-login", password="your-password")
    with served(fake) as base_url:
        monkeypatch.setattr(
            aiosms.sync, "MySms", functools.partial(aiosms.sync.MySms, base_url=base_url)
        )
        yield fake


def block(holding: str) -> str:
    (code,) = [b for b in BLOCKS if holding in b]
    return code


def test_the_first_example_sends_and_reads_back(fake: FakeMySms) -> None:
    run(BLOCKS[0])
    assert [e.text for e in fake.ledger] == ["Привет"]


def test_the_one_time_code_example_sends_once_and_reports_an_unknown_outcome(
    fake: FakeMySms,
) -> None:
    example = run(block("def send_otp("))
    try:
        message_id = example["send_otp"]("+7 911 222-33-33", "4821")
        assert message_id == fake.ledger[0].id
        fake.faults.add(Fault.reset_after(), endpoint="send")
        assert example["send_otp"]("+7 911 222-33-33", "4822") is None
        fake.reject_number("79110000000", -12)
        with pytest.raises(aiosms.RecipientError):
            example["send_otp"]("79110000000", "4823")
    finally:
        example["sms"].close()
    # The unknown one reached the gateway once and was not resent.
    assert [e.text for e in fake.ledger] == ["Your code: 4821", "Your code: 4822"]


def test_the_celery_task_is_valid_python_that_retries_only_what_did_not_go_out() -> None:
    code = block("from celery import shared_task")
    compile(code, "docs/sync.md", "exec")
    assert "self.retry(" in code
    assert "may_have_been_sent" in code
    assert "autoretry_for" not in code
