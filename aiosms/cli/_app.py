"""The ``aiosms`` command group: global options, and the subcommands registered on it.

A subcommand group in its own module (``campaign``, ``stoplist``) is added to the
tuple at the end of this module and reuses the small modules beside it: the global
options arrive as a ``Settings`` through ``_settings.pass_settings``; ``_client.open_client``
builds the gateway client (the fake included); ``_output.emit`` and ``_output.progress``
write data and progress; ``_run.run(..., interruptible=True)`` runs the body and maps
errors and signals onto ``_exit.ExitCode``. ``Settings.journal`` holds ``--journal``.
"""

from __future__ import annotations

from pathlib import Path

import click

from aiosms.cli._campaign import campaign
from aiosms.cli._commands import balance, credentials, profile, segments, send, status
from aiosms.cli._exit import EPILOG
from aiosms.cli._fake import fake
from aiosms.cli._output import setup_logging
from aiosms.cli._settings import Settings, default_journal
from aiosms.cli._stoplist import stoplist
from aiosms.cli._worker import worker

__all__ = ["cli"]

_CONTEXT = {"auto_envvar_prefix": "AIOSMS", "help_option_names": ["-h", "--help"]}

_EPILOG = (
    EPILOG
    + """
\b
Credentials (never on the command line):
  logins     --username / AIOSMS_MYSMS_USERNAME (my-sms), --email / AIOSMS_1000SMS_EMAIL (1000sms)
  passwords  --password-stdin, --password-file PATH, AIOSMS_MYSMS_PASSWORD_FILE,
             AIOSMS_1000SMS_PASSWORD_FILE, AIOSMS_MYSMS_PASSWORD / AIOSMS_1000SMS_PASSWORD
             (less safe), or the profile file written by 'aiosms credentials save' (mode 0600)
\b
Every global option also reads AIOSMS_<OPTION>, e.g. AIOSMS_GATEWAY=1000sms.
"""
)


@click.group(context_settings=_CONTEXT, epilog=_EPILOG)
@click.option(
    "--gateway",
    type=click.Choice(["mysms", "1000sms", "fake"]),
    default="mysms",
    show_default=True,
    help="The SMS gateway; 'fake' serves aiosms's fake gateway on 127.0.0.1.",
)
@click.option(
    "--fake-flavour",
    type=click.Choice(["mysms", "1000sms"]),
    default="mysms",
    show_default=True,
    help="Which gateway the fake imitates.",
)
@click.option("--base-url", metavar="URL", help="The gateway's address (a fake's, for instance).")
@click.option(
    "--journal",
    metavar="PATH|postgresql://…",
    default=default_journal,
    show_default="$XDG_DATA_HOME/aiosms/campaigns.db",
    help="The campaign journal.",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="Format of the data on stdout.",
)
@click.option("--show-numbers", is_flag=True, help="Show phone numbers in full (masked otherwise).")
@click.option("--sender", metavar="NAME", help="Sender name of the messages sent.")
@click.option(
    "--username",
    envvar=["AIOSMS_MYSMS_USERNAME", "AIOSMS_USERNAME"],
    help="my-sms login [env: AIOSMS_MYSMS_USERNAME].",
)
@click.option(
    "--email",
    envvar=["AIOSMS_1000SMS_EMAIL", "AIOSMS_EMAIL"],
    help="1000sms login [env: AIOSMS_1000SMS_EMAIL].",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the password from the first line of this file.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@click.option("-v", "--verbose", count=True, help="Log more on stderr (-v info, -vv debug).")
@click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio", hidden=True)
@click.version_option(package_name="aiosms")
@click.pass_context
def cli(
    ctx: click.Context,
    gateway: str,
    fake_flavour: str,
    base_url: str | None,
    journal: str,
    output: str,
    show_numbers: bool,
    sender: str | None,
    username: str | None,
    email: str | None,
    password_file: Path | None,
    password_stdin: bool,
    verbose: int,
    backend: str,
) -> None:
    """Send SMS through my-sms.ru or 1000sms.ru; data on stdout, messages on stderr."""
    ctx.call_on_close(setup_logging(verbose))
    ctx.obj = Settings(
        gateway=gateway,  # type: ignore[arg-type]
        fake_flavour=fake_flavour,  # type: ignore[arg-type]
        base_url=base_url,
        journal=journal,
        output=output,  # type: ignore[arg-type]
        show_numbers=show_numbers,
        sender=sender,
        username=username,
        email=email,
        password_file=password_file,
        password_stdin=password_stdin,
        backend=backend,  # type: ignore[arg-type]
    )


for _command in (
    send, status, balance, profile, segments, credentials, campaign, stoplist, worker, fake,
):  # fmt: skip
    cli.add_command(_command)
del _command
