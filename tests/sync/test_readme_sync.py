"""The README's "Django and Celery" code runs as written, against a fake on 127.0.0.1."""

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

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Django and Celery") :]
SECTION = SECTION[: SECTION.index("\n## ")]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.DOTALL)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMySms]:
    fake = FakeMySms(username="your-login", password="your-password")
    with served(fake) as base_url:
        monkeypatch.setattr(
            aiosms.sync, "MySms", functools.partial(aiosms.sync.MySms, base_url=base_url)
        )
        yield fake


def test_the_one_time_code_helper_sends_once_and_never_resends_an_unknown(
    fake: FakeMySms,
) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_sync_example"}
    exec(compile(BLOCKS[0], "README.md", "exec"), namespace)
    try:
        assert namespace["send_otp"]("+7 911 222-33-33", "1111") == fake.ledger[0].id
        fake.faults.add(Fault.reset_after(), endpoint="send")
        assert namespace["send_otp"]("+7 911 222-33-33", "2222") is None
    finally:
        namespace["sms"].close()
    assert [e.text for e in fake.ledger] == ["Your code: 1111", "Your code: 2222"]


def test_the_celery_task_retries_only_what_did_not_go_out() -> None:
    code = BLOCKS[1]
    compile(code, "README.md", "exec")
    assert "if error.may_have_been_sent:\n            raise" in code
    assert "autoretry_for" not in code
