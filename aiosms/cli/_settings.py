"""The global options of the ``aiosms`` command, as one object every subcommand receives.

Subcommand modules (``send``, ``campaign`` …) take a :class:`Settings` through
:data:`pass_settings` and never parse the global options themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import attrs
import click

__all__ = [
    "FAKE_SENDER",
    "Gateway",
    "Output",
    "Settings",
    "config_dir",
    "data_dir",
    "default_journal",
    "pass_settings",
]

Gateway = Literal["mysms", "1000sms", "fake"]
Output = Literal["table", "json", "jsonl", "csv"]

#: The sender name used with the fake gateway when none is given: valid on both gateways.
FAKE_SENDER = "aiosms"


@attrs.define(slots=True)
class Settings:
    """Everything the global options said; credentials are resolved later, only when needed."""

    gateway: Gateway = "mysms"
    fake_flavour: Literal["mysms", "1000sms"] = "mysms"
    base_url: str | None = None
    journal: str = ""
    output: Output = "table"
    show_numbers: bool = False
    sender: str | None = None
    username: str | None = None
    email: str | None = None
    password_file: Path | None = None
    password_stdin: bool = False
    backend: Literal["asyncio", "trio"] = "asyncio"

    @property
    def flavour(self) -> Literal["mysms", "1000sms"]:
        """The gateway whose protocol is spoken: the fake speaks its flavour's."""
        return self.fake_flavour if self.gateway == "fake" else self.gateway


pass_settings = click.make_pass_decorator(Settings, ensure=True)


def data_dir() -> Path:
    """``$XDG_DATA_HOME/aiosms``, by default ``~/.local/share/aiosms``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aiosms"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/aiosms``, by default ``~/.config/aiosms``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aiosms"


def default_journal() -> str:
    """Where campaigns are journalled unless ``--journal`` says otherwise."""
    return str(data_dir() / "campaigns.db")
