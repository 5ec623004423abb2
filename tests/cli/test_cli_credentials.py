"""Credentials for the aiosms command: never on argv, never in output, logs or errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from aiosms.cli._app import cli
from aiosms.testing import FakeMySms, FakeThousandSms

WRONG = "not-a-real-password"


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in list(os.environ):
        if name.startswith("AIOSMS_"):
            monkeypatch.delenv(name)
    return tmp_path


def against_fake(fake: FakeMySms | FakeThousandSms, *args: str, **kw: object) -> Result:
    """Run the command against ``fake`` served on 127.0.0.1."""
    box: list[Result] = []

    async def scenario() -> None:
        async with fake.serve() as base_url:
            box.append(
                await anyio.to_thread.run_sync(
                    lambda: invoke("--base-url", base_url, *args, **kw)  # type: ignore[arg-type]
                )
            )

    anyio.run(scenario)
    return box[0]


def test_password_file_logs_in(home: Path) -> None:
    secret = home / "pw"
    secret.write_text("test-password\n")
    secret.chmod(0o600)
    result = against_fake(
        FakeMySms(),
        "--username",
        "test-user",
        "--password-file",
        str(secret),
        "--output",
        "json",
        "balance",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["amount"] == "1000.0000"


def test_password_stdin_logs_in_to_1000sms(home: Path) -> None:
    result = against_fake(
        FakeThousandSms(),
        "--gateway",
        "1000sms",
        "--email",
        "test@example.com",
        "--password-stdin",
        "--output",
        "json",
        "balance",
        input="test-password\n",
    )
    assert result.exit_code == 0, result.stderr


def test_password_file_from_the_gateway_environment_variable(home: Path) -> None:
    secret = home / "pw"
    secret.write_text("test-password")
    secret.chmod(0o600)
    env = {"AIOSMS_MYSMS_USERNAME": "test-user", "AIOSMS_MYSMS_PASSWORD_FILE": str(secret)}
    result = against_fake(FakeMySms(), "balance", env=env)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("how", ["env", "stdin", "file"])
def test_a_wrong_password_exits_1_and_never_appears_in_output_or_logs(
    home: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = home / "pw"
    secret.write_text(WRONG + "\n")
    secret.chmod(0o600)
    args = ["-vv", "--username", "test-user"]
    env: dict[str, str] = {}
    stdin = None
    if how == "env":
        env["AIOSMS_MYSMS_PASSWORD"] = WRONG
    elif how == "stdin":
        args.append("--password-stdin")
        stdin = WRONG + "\n"
    else:
        args += ["--password-file", str(secret)]
    with caplog.at_level(logging.DEBUG):
        result = against_fake(FakeMySms(), *args, "balance", env=env, input=stdin)
    assert result.exit_code == 1
    assert "AuthenticationError" in result.stderr
    assert WRONG not in result.stdout + result.stderr
    assert caplog.records  # -vv logged the requests
    assert all(WRONG not in record.getMessage() for record in caplog.records)


def test_no_password_anywhere_is_a_configuration_error_naming_the_ways(home: Path) -> None:
    result = invoke("--username", "u", "balance")
    assert result.exit_code == 1
    assert "--password-file" in result.stderr


def test_credentials_save_writes_a_0600_profile_that_then_logs_in(home: Path) -> None:
    saved = invoke(
        "--username",
        "test-user",
        "--password-stdin",
        "credentials",
        "save",
        input="test-password\n",
    )
    assert saved.exit_code == 0, saved.stderr
    path = home / "config" / "aiosms" / "profile.ini"
    assert path.stat().st_mode & 0o777 == 0o600
    assert "test-password" not in saved.stdout + saved.stderr
    result = against_fake(FakeMySms(), "balance")
    assert result.exit_code == 0, result.stderr


def test_a_profile_readable_by_others_is_refused_with_chmod_advice(home: Path) -> None:
    path = home / "config" / "aiosms" / "profile.ini"
    path.parent.mkdir(parents=True)
    path.write_text(f"[mysms]\nusername = test-user\npassword = {WRONG}\n")
    path.chmod(0o644)
    result = invoke("balance")
    assert result.exit_code == 1
    assert "chmod 600" in result.stderr
    assert WRONG not in result.stderr + result.stdout


def test_a_password_file_readable_by_others_is_refused(home: Path) -> None:
    secret = home / "pw"
    secret.write_text(WRONG)
    secret.chmod(0o644)
    result = invoke("--username", "u", "--password-file", str(secret), "balance")
    assert result.exit_code == 1
    assert "chmod 600" in result.stderr
    assert WRONG not in result.stderr


def test_credentials_save_prompts_for_the_password_without_echo(home: Path) -> None:
    saved = invoke(
        "--gateway",
        "1000sms",
        "--email",
        "test@example.com",
        "credentials",
        "save",
        input="test-password\n",
    )
    assert saved.exit_code == 0, saved.stderr
    assert "test-password" not in saved.stdout + saved.stderr
    result = against_fake(FakeThousandSms(), "--gateway", "1000sms", "balance")
    assert result.exit_code == 0, result.stderr
