"""Running a command's async body and turning how it ended into an exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio
import click

from aiosms._errors import SmsError
from aiosms.cli._exit import ExitCode, exit_code_for_error
from aiosms.cli._settings import Settings

__all__ = ["fail", "run"]


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    click.echo(f"aiosms: {message}", err=True)
    sys.exit(int(code))


def run(
    settings: Settings,
    body: Callable[[], Awaitable[ExitCode | None]],
    *,
    interruptible: bool = False,
) -> NoReturn:
    """Run ``body`` on the chosen event loop and exit with the code it returns (0 if None).

    An aiosms error is printed on stderr (its text never holds a password) and mapped
    by :func:`exit_code_for_error`; Ctrl-C exits 5. With ``interruptible`` (long runs such
    as campaigns; the main thread only), SIGINT and SIGTERM cancel ``body`` (its clean-up
    runs) and the command exits 5.
    """
    try:
        if interruptible:
            code = anyio.run(_until_signalled, body, backend=settings.backend)
        else:
            code = anyio.run(body, backend=settings.backend)
    except SmsError as error:
        fail(f"{type(error).__name__}: {error}", exit_code_for_error(error))
    except KeyboardInterrupt as error:
        fail("interrupted", exit_code_for_error(error))
    sys.exit(int(code or ExitCode.OK))


async def _until_signalled(body: Callable[[], Awaitable[ExitCode | None]]) -> ExitCode | None:
    code: ExitCode | None = None
    failure: list[BaseException] = []
    received: list[int] = []
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                async for number in signals:
                    received.append(number)
                    tg.cancel_scope.cancel()
                    return

            async def work() -> None:
                nonlocal code
                try:
                    code = await body()
                except (Exception, SystemExit) as error:
                    # Raised again below, as itself: a task group would wrap it in a group.
                    failure.append(error)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            tg.start_soon(work)
    if failure:
        raise failure[0]
    if received:
        click.echo(f"aiosms: interrupted by {signal.Signals(received[0]).name}", err=True)
        return ExitCode.INTERRUPTED
    return code
