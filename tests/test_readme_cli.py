"""The README's set-up block and its command sections work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aiosms.cli._app import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    start = README.index(f"## {heading}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def setup_commands() -> list[list[str]]:
    """The first set-up block's ``aiosms`` commands, as argument lists (no venv, no pip)."""
    block = re.findall(r"```sh\n(.*?)```", section("Set-up"), re.DOTALL)[0]
    line = block.replace("\\\n", " ")
    commands = [shlex.split(part) for part in line.split("&&")]
    assert commands[0][:3] == ["python3", "-m", "venv"]
    assert commands[1][0] == ".venv/bin/pip"
    assert all(c[0] == ".venv/bin/aiosms" for c in commands[2:])
    return [c[1:] for c in commands[2:]]


def test_the_setup_block_runs_a_campaign_to_its_report_twice_in_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    journal = str(tmp_path / "demo.db")
    commands = setup_commands()
    assert [c[c.index("campaign") + 1] for c in commands] == ["create", "run", "report"]
    created = []
    for _ in range(2):
        outputs = []
        for args in commands:
            args = [journal if a == ".venv/demo.db" else a for a in args]
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
            if "create" in args:
                created.append(result.stderr.strip())
        report = outputs[-1]
        assert "campaign demo" in report
        assert re.search(r"accepted\s*│\s*24\s", report)
        assert re.search(r"skipped\s*│\s*1\s", report)
    assert created == [
        "campaign demo: added 24, already present 0, skipped 1",
        "campaign demo: added 0, already present 25, skipped 0",
    ]


def test_examples_customers_csv_has_fake_numbers_and_one_invalid_row() -> None:
    lines = (ROOT / "examples" / "customers.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,name,phone"
    phones = [line.split(",")[2] for line in lines[1:]]
    assert 20 <= len(phones) <= 50
    assert sum(not p.startswith("+7 900 000-00-") for p in phones) == 1


def command_paths(text: str) -> list[tuple[str, ...]]:
    """``(group, command)`` pairs used in ``aiosms …`` lines of ``text``'s sh blocks."""
    paths: list[tuple[str, ...]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "aiosms":
                group = next(w for w in words if w in ("campaign", "stoplist"))
                paths.append((group, words[words.index(group) + 1]))
    return paths


def test_the_campaign_section_uses_only_commands_and_options_that_exist() -> None:
    text = section("Campaigns: durable sending from the command line")
    paths = command_paths(text)
    assert {command for _, command in paths} == {
        "create", "run", "track", "report", "export",
    }  # fmt: skip
    for group, command in paths:
        found = cli.commands[group]
        assert isinstance(found, click.Group)
        assert command in found.commands
    for option in re.findall(r"(--[a-z-]+)", text):
        known = {o for p in _every_param() for o in p.opts}
        assert option in known, option


def _every_param() -> list[click.Parameter]:
    params = list(cli.params)
    for group in ("campaign", "stoplist"):
        found = cli.commands[group]
        assert isinstance(found, click.Group)
        for command in found.commands.values():
            params += command.params
    return params
