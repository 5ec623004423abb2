"""The public surface of aiosms.campaigns is a tested fact, as for aiosms itself."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import aiosms.campaigns


def test_all_lists_exactly_the_public_names_of_the_campaigns_package() -> None:
    # PostgresJournal is imported on first use (it needs psycopg): use it first.
    assert aiosms.campaigns.PostgresJournal.__name__ == "PostgresJournal"
    public = sorted(
        name
        for name, value in vars(aiosms.campaigns).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )
    assert sorted(aiosms.campaigns.__all__) == public


def test_every_exported_class_says_aiosms_campaigns_as_its_module() -> None:
    for name in aiosms.campaigns.__all__:
        obj = getattr(aiosms.campaigns, name)
        if inspect.isclass(obj):
            assert obj.__module__ == "aiosms.campaigns", name


def test_every_exported_name_has_a_docstring() -> None:
    for name in aiosms.campaigns.__all__:
        assert inspect.getdoc(getattr(aiosms.campaigns, name)), name


def test_importing_the_campaigns_package_does_not_import_psycopg() -> None:
    code = "import sys, aiosms.campaigns; print('psycopg' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
