"""``aiosms fake serve``: the fake gateway as a standalone local server for development."""

from __future__ import annotations

import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import anyio
import click

from aiosms.cli._client import FAKE_BALANCE, make_fake
from aiosms.cli._commands import _price
from aiosms.cli._exit import ExitCode
from aiosms.cli._output import emit
from aiosms.cli._run import run
from aiosms.cli._settings import Settings, pass_settings
from aiosms.testing import FakeMySms, FakeThousandSms
from aiosms.testing._server import LoopbackServer

__all__ = ["fake"]


@click.group()
def fake() -> None:
    """aiosms's fake gateway, for developing without an account."""


@fake.command("serve")
@click.option(
    "--gateway",
    "flavour",
    type=click.Choice(["mysms", "1000sms"]),
    default="mysms",
    show_default=True,
    help="Which gateway's protocol to speak.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (0: a free one).")
@click.option(
    "--latency", type=click.FloatRange(0), default=0.0, help="Seconds added to every reply."
)
@click.option(
    "--chaos",
    type=click.FloatRange(0, 1),
    default=0.0,
    metavar="RATE",
    help="Fraction of requests hit by a random fault (resets, 5xx, broken bodies …).",
)
@click.option(
    "--balance",
    callback=_price,
    default=str(FAKE_BALANCE),
    show_default=True,
    help="What the fake account holds.",
)
@click.option(
    "--ledger-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append each accepted message (id, phone, text, sender) to this file as a JSON line.",
)
@pass_settings
def serve(
    settings: Settings,
    flavour: str,
    host: str,
    port: int,
    latency: float,
    chaos: float,
    balance: Decimal,
    ledger_file: Path | None,
) -> None:
    """Serve a fake gateway until SIGINT or SIGTERM; print its base URL and fake credentials.

    Point a client at it with those credentials, or use ``aiosms --gateway fake
    --fake-flavour FLAVOUR --base-url URL …``. The state (balance, ledger, message
    states) lives in memory for as long as the server runs.
    """
    gateway = make_fake(flavour, latency=latency, balance=balance)
    if chaos:
        gateway.faults.chaos(chaos, seed=int.from_bytes(os.urandom(4), "big"))
    handle = None
    if ledger_file is not None:
        handle = ledger_file.open("a", encoding="utf-8")
        gateway.ledger = _LedgerFile(handle)

    try:
        run(settings, lambda: _serve(settings, gateway, flavour, host=host, port=port))
    finally:
        if handle is not None:
            handle.close()


async def _serve(
    settings: Settings, gateway: FakeMySms | FakeThousandSms, flavour: str, *, host: str, port: int
) -> ExitCode:
    """Serve ``gateway`` and print where, until SIGINT or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with LoopbackServer(gateway, port=port, host=host) as server:
            shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
            login = (
                ("username", gateway.username)
                if isinstance(gateway, FakeMySms)
                else ("email", gateway.email)
            )
            served = {
                "gateway": flavour,
                "base_url": f"http://{shown}:{server.port}{gateway.prefix}",
                login[0]: login[1],
                "password": gateway.password,
                "balance": gateway.balance,
            }
            emit([served], settings, single=True)
            sys.stdout.flush()
            async for received in signals:
                click.echo(f"fake gateway: {signal.Signals(received).name}, stopping", err=True)
                break
    return ExitCode.OK


class _LedgerFile(list):  # type: ignore[type-arg]
    """The fake's ledger, also written to a file one flushed JSON line per message, so
    another process can read what the fake accepted while it runs."""

    def __init__(self, handle: IO[str]) -> None:
        super().__init__()
        self._handle = handle

    def append(self, entry: Any) -> None:
        super().append(entry)
        sender = getattr(entry, "sender", None) or getattr(entry, "sender_name", None)
        line = {"id": entry.id, "phone": entry.phone, "text": entry.text, "sender": sender}
        self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()
