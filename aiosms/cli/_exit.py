"""Exit codes of the ``aiosms`` command, and the one place that maps outcomes onto them.

Every command (campaign commands included) ends through :func:`exit_code_for_error` or
:func:`exit_code_for_states`, so a script can tell "nothing went out" from "some went
out and some did not" without reading the output.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from aiosms._errors import (
    AccountError,
    AuthenticationError,
    ClosedError,
    DeliveryUnknownError,
    InsufficientFundsError,
    ProtocolError,
    ProviderError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import DeliveryState

__all__ = ["EPILOG", "ExitCode", "exit_code_for_error", "exit_code_for_states"]


class ExitCode(enum.IntEnum):
    """What the command's exit status means."""

    #: Everything asked for was done (every message accepted).
    OK = 0
    #: Nothing was sent: configuration, validation, authentication, account or network.
    NOTHING_SENT = 1
    #: The command line was wrong (click's own code).
    USAGE = 2
    #: Finished, and the gateway refused some messages (certainly not sent).
    REJECTED = 3
    #: Finished, and some outcomes are unknown (those messages may have been sent).
    UNKNOWN = 4
    #: Paused (an account-level refusal) or interrupted (Ctrl-C, SIGTERM).
    INTERRUPTED = 5


EPILOG = """\b
Exit codes:
  0  all accepted
  1  nothing sent (configuration, validation, authentication)
  2  usage
  3  finished with rejections
  4  finished with unknown outcomes
  5  paused or interrupted
"""

# Refusals of the account or the set-up: nothing of this run can go out.
_NOTHING_SENT: tuple[type[SmsError], ...] = (
    ValidationError,
    ClosedError,
    AuthenticationError,
    AccountError,
    InsufficientFundsError,
    ProtocolError,
)


def exit_code_for_error(error: BaseException) -> ExitCode:
    """The exit code for a run that ended with ``error``.

    An error that may have let a message out is an unknown outcome (4) whatever its
    class; account and set-up refusals, failed reads and provably unsent requests mean
    nothing was sent (1); any other refusal by the gateway is a rejection (3); an
    interruption is 5. Anything else (a bug, a broken file) counts as nothing sent.
    """
    if isinstance(error, (KeyboardInterrupt, InterruptedError)):
        return ExitCode.INTERRUPTED
    if not isinstance(error, SmsError):
        return ExitCode.NOTHING_SENT
    if isinstance(error, DeliveryUnknownError) or error.may_have_been_sent:
        return ExitCode.UNKNOWN
    if isinstance(error, (*_NOTHING_SENT, TransportError)):
        return ExitCode.NOTHING_SENT
    if isinstance(error, ProviderError):
        return ExitCode.REJECTED
    return ExitCode.NOTHING_SENT


def exit_code_for_states(states: Iterable[DeliveryState]) -> ExitCode:
    """The exit code for a run whose messages ended in ``states``: unknown wins over rejected."""
    seen = set(states)
    if DeliveryState.UNKNOWN in seen:
        return ExitCode.UNKNOWN
    if DeliveryState.REJECTED in seen:
        return ExitCode.REJECTED
    return ExitCode.OK
