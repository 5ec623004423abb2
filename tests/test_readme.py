"""The README's code runs as written, against the fake gateways."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

import aiosms
from aiosms.testing import FakeMySms, FakeThousandSms

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    start = README.index(f"## {heading}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def blocks(heading: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(heading), re.DOTALL)


def run_module(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


@pytest.fixture
def readme_fake(monkeypatch: pytest.MonkeyPatch) -> FakeMySms:
    """A fake holding the README's placeholder credentials; the README's clients reach it."""
    fake = FakeMySms(username="your-login", password="your-password")
    client = functools.partial(
        aiosms.MySms, base_url=fake.base_url, http_transport=fake.httpx_transport()
    )
    monkeypatch.setattr(aiosms, "MySms", client)
    return fake


def test_the_setup_commands_are_the_ones_ci_runs() -> None:
    install, test = blocks("Set-up", "sh")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install.strip() in ci
    assert test.strip() in ci


@pytest.mark.anyio
async def test_the_web_app_quickstart_runs_as_written(readme_fake: FakeMySms) -> None:
    (code,) = blocks("Quickstart: a web app sending one-time codes", "python")
    app = run_module(code)
    message_id = await app["send_otp"]("+7 911 222-33-33", "1234")
    with pytest.raises(ValueError, match="to"):
        await app["send_otp"]("not a number", "1234")
    await app["on_shutdown"]()
    assert [(e.id, e.phone, e.text) for e in readme_fake.ledger] == [
        (message_id, "79112223333", "Your code: 1234")
    ]


@pytest.mark.anyio
async def test_the_campaign_quickstart_runs_as_written(
    readme_fake: FakeMySms, capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = blocks("Quickstart: a campaign", "python")
    body, run_line = code.rstrip().rsplit("\n", 1)
    assert run_line == "anyio.run(main)"
    await run_module(body)["main"]()
    out = capsys.readouterr().out.splitlines()
    ids = [e.id for e in readme_fake.ledger]
    assert out == [f"0 queued as {ids[0]}", f"1 queued as {ids[1]}"]
    assert [e.phone for e in readme_fake.ledger] == ["79112223333", "79123456789"]


@pytest.mark.anyio
async def test_the_testing_examples_pass_as_written() -> None:
    (code,) = blocks("Testing your own code", "python")
    tests = run_module(code)
    await tests["test_signup_sends_the_code"](FakeMySms())
    await tests["test_a_lost_reply_is_reported_not_resent"](FakeMySms())


def test_the_segments_example_prints_what_the_readme_shows() -> None:
    (example,) = re.findall(r">>> (.*)\n(.*)\n", section("Messages"))
    expression, shown = example
    assert repr(eval(expression, {"aiosms": aiosms})) == shown


def test_the_message_example_builds_a_message() -> None:
    code = blocks("Messages", "python")[0]
    namespace = run_module(
        "import aiosms\n" + code.replace("aiosms.Message(", "m = aiosms.Message(", 1)
    )
    assert namespace["m"].to == "79112223333"
    assert namespace["m"].key == "order-1234"


@pytest.mark.anyio
async def test_the_1000sms_quickstart_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeThousandSms(email="you@example.com", password="your-password")
    client = functools.partial(
        aiosms.ThousandSms, base_url=fake.base_url, http_transport=fake.httpx_transport()
    )
    monkeypatch.setattr(aiosms, "ThousandSms", client)
    (code,) = blocks("Quickstart: 1000sms.ru", "python")
    await run_module(code)["main"]()
    # "Код: 1234" is Cyrillic and short: one part at the fake's price of 2.5.
    assert capsys.readouterr().out.splitlines() == [
        "1 2.5",
        "queued True",
        "you@example.com руб.",
    ]
    assert [(e.phone, e.text) for e in fake.ledger] == [("79160000000", "Код: 1234")]


@pytest.mark.anyio
async def test_the_campaign_worker_example_runs_as_written(readme_fake: FakeMySms) -> None:
    (code,) = blocks("Campaign workers: the Batcher", "python")
    counts = await run_module(code)["run_campaign"]()
    # Row 2 ("495 123-45-67") lacks its country code: rejected, and the campaign goes on.
    assert counts == {"queued": 2, "rejected": 1, "unknown": 0}
    assert sorted(e.phone for e in readme_fake.ledger) == ["79160000001", "79160000003"]
