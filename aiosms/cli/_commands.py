"""The one-shot commands: send, status, balance, profile, segments, credentials."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from aiosms._models import Message, Receipt, StatusReport
from aiosms._providers.thousandsms import ThousandSms
from aiosms._segments import segments as count_segments
from aiosms.cli._client import open_client
from aiosms.cli._credentials import ConfigError, profile_path, write_profile
from aiosms.cli._exit import ExitCode, exit_code_for_states
from aiosms.cli._output import emit
from aiosms.cli._run import run
from aiosms.cli._settings import Settings, pass_settings

__all__ = ["balance", "credentials", "profile", "segments", "send", "status"]


def _receipt_row(receipt: Receipt) -> dict[str, Any]:
    return {
        "message_id": receipt.message_id,
        "to": receipt.message.to,
        "state": receipt.state,
        "parts": receipt.parts,
        "cost": receipt.cost,
        "code": receipt.code,
        "error": str(receipt.error) if receipt.error else None,
    }


def _report_row(report: StatusReport) -> dict[str, Any]:
    return {
        "message_id": report.message_id,
        "state": report.state,
        "code": report.code,
        "state_text": report.state_text,
        "phone": report.phone,
        "parts": report.parts,
        "cost": report.cost,
        "error": str(report.error) if report.error else None,
    }


@click.command()
@click.argument("to")
@click.argument("text")
@pass_settings
def send(settings: Settings, to: str, text: str) -> None:
    """Send one SMS with TEXT to the number TO."""

    async def body() -> ExitCode:
        message = Message(to=to, text=text)
        async with open_client(settings) as client:
            receipt = await client.send(message)
        emit([_receipt_row(receipt)], settings, single=True)
        return exit_code_for_states([receipt.state])

    run(settings, body)


@click.command()
@click.argument("message_ids", metavar="ID...", nargs=-1, required=True)
@pass_settings
def status(settings: Settings, message_ids: tuple[str, ...]) -> None:
    """Show the delivery state of each message ID (exit 3 if some are unknown to the gateway)."""

    async def body() -> ExitCode:
        async with open_client(settings) as client:
            reports = await client.status_many(message_ids)
        emit([_report_row(report) for report in reports], settings)
        return exit_code_for_states(report.state for report in reports)

    run(settings, body)


@click.command()
@pass_settings
def balance(settings: Settings) -> None:
    """Show the account's balance."""

    async def body() -> None:
        async with open_client(settings) as client:
            result = await client.balance()
        emit([{"amount": result.amount, "currency": result.currency}], settings, single=True)

    run(settings, body)


@click.command()
@pass_settings
def profile(settings: Settings) -> None:
    """Show the account's profile (1000sms only)."""
    if settings.flavour != "1000sms":
        raise click.UsageError(
            "'profile' exists on 1000sms only: use --gateway 1000sms "
            "(or --gateway fake --fake-flavour 1000sms)"
        )

    async def body() -> None:
        async with open_client(settings) as client:
            assert isinstance(client, ThousandSms)
            result = await client.profile()
        row = {
            "id": result.id,
            "email": result.email,
            "first_name": result.first_name,
            "last_name": result.last_name,
            "credits": result.credits,
            "credits_used": result.credits_used,
            "credits_name": result.credits_name,
            "currency": result.currency,
            "sender": result.sender,
        }
        emit([row], settings, single=True)

    run(settings, body)


def _price(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise click.BadParameter(f"{value!r} is not a price")
    return price


@click.command()
@click.argument("text")
@click.option(
    "--price", callback=_price, metavar="PRICE", help="Price of one SMS part, for a cost estimate."
)
@pass_settings
def segments(settings: Settings, text: str, price: Decimal | None) -> None:
    """Count the SMS parts TEXT takes, its encoding and what forced UCS-2 (no account needed)."""
    result = count_segments(text)
    row: dict[str, Any] = {
        "encoding": result.encoding,
        "parts": result.parts,
        "units": result.units,
        "per_part": result.per_part,
        "ucs2_chars": "".join(result.ucs2_chars),
    }
    if price is not None:
        row["price"] = price
        row["cost"] = price * result.parts
    emit([row], settings, single=True)


@click.group()
def credentials() -> None:
    """Store a login and password in the profile file (mode 0600)."""


@credentials.command("save")
@pass_settings
def credentials_save(settings: Settings) -> None:
    """Save the login and password of --gateway (mysms or 1000sms) in the profile file.

    The login comes from --username / --email; the password from --password-stdin,
    --password-file, or a prompt that does not echo.
    """
    gateway = settings.gateway
    if gateway == "fake":
        raise click.UsageError("the fake gateway needs no credentials")
    login = settings.username if gateway == "mysms" else settings.email
    if not login:
        option = "--username" if gateway == "mysms" else "--email"
        raise click.UsageError(f"give the login with {option}")
    if settings.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif settings.password_file is not None:
        try:
            password = settings.password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError):
            raise ConfigError(f"cannot read a password from {settings.password_file}") from None
    else:
        password = click.prompt(f"{gateway} password", hide_input=True, err=True)
    if not password:
        raise ConfigError("the password is empty")
    path = write_profile(gateway, login, password)
    click.echo(f"saved {gateway} credentials for {login} in {path}", err=True)


@credentials.command("path")
def credentials_path() -> None:
    """Print where the profile file is (``AIOSMS_PROFILE`` overrides it)."""
    click.echo(str(profile_path()))
