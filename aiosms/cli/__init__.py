"""The ``aiosms`` command (extra ``aiosms[cli]``: click and rich).

click is imported inside :func:`main`, so that without the extra the command says how
to install it instead of failing with a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_MISSING = "aiosms: the command needs the 'cli' extra: pip install 'aiosms[cli]'"


def main() -> None:
    """Run the ``aiosms`` command (the console script's entry point)."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(_MISSING, file=sys.stderr)
        sys.exit(1)
    from aiosms.cli._app import cli

    cli.main(prog_name="aiosms")
