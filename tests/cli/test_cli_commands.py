"""The aiosms command through its entry point, against the fake gateway."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest
from click.testing import CliRunner, Result

import aiosms
from aiosms.cli._app import cli
from aiosms.cli._exit import ExitCode, exit_code_for_error
from aiosms.testing import FakeMySms, FakeThousandSms, Fault

BACKENDS = ["asyncio", "trio"]


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_send_through_the_fake_gateway_prints_an_accepted_receipt_as_json(backend: str) -> None:
    result = invoke(
        "--backend", backend, "--gateway", "fake", "--output", "json", "send", "79112223333", "Hi"
    )
    assert result.exit_code == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["state"] == "queued"
    assert receipt["to"] == "7911*****33"
    assert receipt["message_id"]


def test_send_shows_the_full_number_only_with_show_numbers() -> None:
    result = invoke(
        "--gateway", "fake", "--output", "json", "--show-numbers", "send", "8 911 222-33-33", "Hi"
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["to"] == "79112223333"


def test_balance_of_the_fake_account_is_a_thousand() -> None:
    result = invoke("--gateway", "fake", "--output", "json", "balance")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"amount": "1000.0000", "currency": None}


@pytest.mark.parametrize("backend", BACKENDS)
def test_status_of_a_message_sent_to_a_running_fake_gateway(backend: str) -> None:
    # `fake serve` keeps state between commands; here the test serves one itself.
    fake = FakeMySms()
    results: dict[str, object] = {}

    async def scenario() -> None:
        async with fake.serve() as base_url:
            common = ["--backend", backend, "--gateway", "fake", "--base-url", base_url]
            common += ["--output", "json"]
            sent = await anyio.to_thread.run_sync(
                lambda: invoke(*common, "send", "79112223333", "Hi")
            )
            message_id = json.loads(sent.stdout)["message_id"]
            results["status"] = await anyio.to_thread.run_sync(
                lambda: invoke(*common, "status", message_id)
            )
            results["id"] = message_id

    anyio.run(scenario, backend=backend)
    status = results["status"]
    assert status.exit_code == 0  # type: ignore[attr-defined]
    reports = json.loads(status.stdout)  # type: ignore[attr-defined]
    assert [r["message_id"] for r in reports] == [results["id"]]
    assert reports[0]["state"] in {"queued", "sent", "delivered"}
    assert len(fake.ledger) == 1


def test_status_of_an_unknown_id_exits_3_with_a_rejected_report() -> None:
    result = invoke("--gateway", "fake", "--output", "jsonl", "status", "no-such-id")
    assert result.exit_code == ExitCode.REJECTED
    report = json.loads(result.stdout.splitlines()[0])
    assert (report["message_id"], report["state"]) == ("no-such-id", "rejected")


def test_profile_on_the_1000sms_fake_shows_the_account() -> None:
    result = invoke("--gateway", "fake", "--fake-flavour", "1000sms", "--output", "json", "profile")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["email"] == "test@example.com"


def test_profile_on_mysms_is_a_usage_error() -> None:
    result = invoke("--gateway", "fake", "profile")
    assert result.exit_code == 2
    assert "1000sms only" in result.stderr


def test_an_invalid_number_exits_1_before_anything_is_sent() -> None:
    result = invoke("--gateway", "fake", "send", "12", "Hi")
    assert result.exit_code == ExitCode.NOTHING_SENT
    assert "ValidationError" in result.stderr
    assert result.stdout == ""


def test_an_unreachable_gateway_exits_1() -> None:
    env = {"AIOSMS_MYSMS_USERNAME": "u", "AIOSMS_MYSMS_PASSWORD": "not-a-real-password"}
    result = invoke("--base-url", "http://127.0.0.1:1/rest/sms/", "balance", env=env)
    assert result.exit_code == ExitCode.NOTHING_SENT
    assert "not-a-real-password" not in result.stderr + result.stdout


def test_global_options_read_aiosms_environment_variables() -> None:
    env = {"AIOSMS_GATEWAY": "fake", "AIOSMS_OUTPUT": "csv"}
    result = invoke("balance", env=env)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["amount,currency", "1000.0000,"]


def test_an_unknown_option_exits_2() -> None:
    assert invoke("--no-such-option", "balance").exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 5 GSM-7 characters: one SMS of 160.
        ("Hello", {"encoding": "GSM-7", "parts": 1, "units": 5, "per_part": 160}),
        # 161 GSM-7 characters: two parts of 153.
        ("a" * 161, {"encoding": "GSM-7", "parts": 2, "units": 161, "per_part": 153}),
        # '€' takes two septets: 80 of them are 160 septets, one SMS.
        ("€" * 80, {"encoding": "GSM-7", "parts": 1, "units": 160, "per_part": 160}),
        # Cyrillic: 6 UTF-16 units in one UCS-2 SMS of 70.
        ("Привет", {"encoding": "UCS-2", "parts": 1, "units": 6, "per_part": 70}),
        # 71 Cyrillic letters: two parts of 67.
        ("ж" * 71, {"encoding": "UCS-2", "parts": 2, "units": 71, "per_part": 67}),
    ],
)
def test_segments_counts_parts_and_encoding(text: str, expected: dict[str, object]) -> None:
    result = invoke("--output", "json", "segments", text)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {key: data[key] for key in expected} == expected


def test_segments_names_the_characters_that_forced_ucs2_and_estimates_the_cost() -> None:
    text = "Hello, мир" + "!" * 60  # 70 units: one UCS-2 SMS
    result = invoke("--output", "json", "segments", "--price", "2,5", text + "!")
    data = json.loads(result.stdout)
    assert data["ucs2_chars"] == "мир"
    assert data["parts"] == 2  # 71 units: two parts of 67
    assert data["cost"] == "5.0"


def test_segments_needs_no_credentials_and_prints_a_table() -> None:
    result = invoke("segments", "Hi", env={"HOME": "/nonexistent"})
    assert result.exit_code == 0
    assert "GSM-7" in result.stdout


def test_segments_refuses_a_price_that_is_not_a_number() -> None:
    assert invoke("segments", "--price", "cheap", "Hi").exit_code == 2


def test_help_documents_the_exit_codes_and_has_no_password_option() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "5  paused or interrupted" in result.stdout
    assert "--password " not in result.stdout
    assert "--password-file" in result.stdout
    assert all(p.name != "password" for p in cli.params)
    refused = invoke("--password", "not-a-real-password", "balance")
    assert refused.exit_code == 2
    assert "No such option" in refused.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (aiosms.ValidationError("to", "digits"), 1),
        (aiosms.AuthenticationError(provider="my-sms", code=-1), 1),
        (aiosms.InsufficientFundsError(provider="my-sms", code=-13), 1),
        (aiosms.TransportError("x", kind="ConnectError", may_have_been_sent=False), 1),
        (aiosms.RecipientError(provider="my-sms", code=-12), 3),
        (aiosms.DeliveryUnknownError("lost"), 4),
        (aiosms.TransportError("x", kind="ReadTimeout", may_have_been_sent=True), 4),
        (KeyboardInterrupt(), 5),
    ],
)
def test_each_error_maps_onto_its_exit_code(error: BaseException, code: int) -> None:
    assert exit_code_for_error(error) == code


def test_without_click_the_command_says_how_to_install_the_extra() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('click', 'rich'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from aiosms.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert "pip install 'aiosms[cli]'" in done.stderr
    assert "Traceback" not in done.stderr


def run_against(fake: FakeMySms | FakeThousandSms, *args: str) -> Result:
    """Run the command against ``fake`` served on 127.0.0.1 (its faults and state visible)."""
    box: list[Result] = []

    async def scenario() -> None:
        async with fake.serve() as base_url:
            common = ["--gateway", "fake", "--base-url", base_url]
            if isinstance(fake, FakeThousandSms):
                common += ["--fake-flavour", "1000sms"]
            box.append(await anyio.to_thread.run_sync(lambda: invoke(*common, *args)))

    anyio.run(scenario)
    return box[0]


def test_a_lost_reply_to_a_send_exits_4_and_says_the_outcome_is_unknown() -> None:
    fake = FakeMySms()
    fake.faults.add(Fault.reset_after(), endpoint="send")
    result = run_against(fake, "send", "79112223333", "Hi")
    assert result.exit_code == ExitCode.UNKNOWN
    assert "DeliveryUnknownError" in result.stderr
    assert len(fake.ledger) == 1  # it did go out: the exit code must not invite a resend


def test_a_refused_recipient_exits_3() -> None:
    fake = FakeMySms()
    fake.reject_number("79112223333")
    result = run_against(fake, "send", "79112223333", "Hi")
    assert result.exit_code == ExitCode.REJECTED
    assert fake.ledger == []


def test_an_empty_fake_account_exits_1_for_insufficient_funds() -> None:
    result = run_against(FakeMySms(balance=0), "send", "79112223333", "Hi")
    assert result.exit_code == ExitCode.NOTHING_SENT
    assert "InsufficientFundsError" in result.stderr


def test_send_through_the_1000sms_fake_reports_parts_and_cost() -> None:
    fake = FakeThousandSms(price="2.5")
    result = run_against(fake, "--output", "json", "send", "79160000000", "Привет")
    assert result.exit_code == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert (receipt["parts"], receipt["cost"]) == (1, "2.5")
    assert fake.ledger[0].phone == "79160000000"


def test_csv_and_jsonl_outputs_mask_numbers() -> None:
    sent = invoke("--gateway", "fake", "--output", "csv", "send", "79112223333", "Hi")
    header, row = sent.stdout.splitlines()
    assert header == "message_id,to,state,parts,cost,code,error"
    assert ",7911*****33,queued," in row
    assert "79112223333" not in sent.stdout


def test_table_output_has_no_colour_codes_under_no_color() -> None:
    result = invoke("segments", "Hi", env={"NO_COLOR": "1", "FORCE_COLOR": ""})
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout
