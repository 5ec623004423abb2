"""``python -m aiosms.cli``: the same as the ``aiosms`` command."""

from aiosms.cli import main

main()
