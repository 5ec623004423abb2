"""`aiosms campaign export` streams: every row, in import order, in memory a page at a time.

A campaign of a million rows is a real case, so the command must not hold them all.
The campaigns here are larger than the journal's page (1,000 rows); the memory test
compares the peak of Python allocations (``tracemalloc``) while exporting a campaign of
three pages and one eight times its size, with stdout going to a real file: a command
that gathered the rows first would need several times more for the larger one.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import tracemalloc
from contextlib import redirect_stdout
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from aiosms import Message
from aiosms.campaigns import Campaign, SqliteJournal
from aiosms.cli._app import cli

#: More than two pages of the journal (1,000 rows a page), and not a multiple of one.
ROWS = 2345


def keys(count: int) -> list[str]:
    return [f"k{i:06d}" for i in range(1, count + 1)]


def build(path: Path, name: str, count: int) -> None:
    """A campaign of ``count`` pending rows keyed k000001… in that order, in a SQLite file."""

    async def main() -> None:
        async with SqliteJournal(path) as journal:
            messages = (
                Message(to=f"+7900{i:07d}", text=f"code {i}", key=key)
                for i, key in enumerate(keys(count), start=1)
            )
            await Campaign.create(journal, name, messages, sender="Shop")

    anyio.run(main)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "campaigns.db"
    build(path, "big", ROWS)
    return path


def export(journal: Path, output: str, *more: str, backend: str = "asyncio") -> str:
    result = CliRunner().invoke(
        cli,
        ["--journal", str(journal), "--backend", backend, "--output", output, *more,
         "campaign", "export", "big"],
        env={"COLUMNS": "400", "NO_COLOR": "1"},
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_json_export_of_a_campaign_larger_than_a_page_is_one_list_of_every_row_in_order(
    journal: Path, backend: str
) -> None:
    rows = json.loads(export(journal, "json", backend=backend))
    assert [row["key"] for row in rows] == keys(ROWS)
    assert {row["state"] for row in rows} == {"pending"}


def test_jsonl_export_is_one_line_per_row_in_import_order(journal: Path) -> None:
    lines = export(journal, "jsonl").splitlines()
    assert [json.loads(line)["key"] for line in lines] == keys(ROWS)


def test_csv_export_has_one_header_then_every_row_in_import_order(journal: Path) -> None:
    text = export(journal, "csv")
    assert text.splitlines()[0].startswith("key,phone,state,")
    assert [row["key"] for row in csv.DictReader(io.StringIO(text))] == keys(ROWS)


def test_table_export_draws_every_row_in_import_order_a_page_at_a_time(tmp_path: Path) -> None:
    # Smaller than the others: rich takes its time over a table of 13 columns.
    path = tmp_path / "campaigns.db"
    build(path, "big", 1234)
    drawn = export(path, "table")
    assert re.findall(r"\bk\d{6}\b", drawn) == keys(1234)
    assert drawn.count("error_class") == 2  # a header per page of 1,000 rows


def test_export_masks_numbers_unless_asked_to_show_them(journal: Path) -> None:
    masked = [json.loads(line)["phone"] for line in export(journal, "jsonl").splitlines()]
    shown = [
        json.loads(line)["phone"]
        for line in export(journal, "jsonl", "--show-numbers").splitlines()
    ]
    assert shown[0] == "79000000001"
    assert "0000001" not in masked[0]
    assert len(masked) == len(shown) == ROWS


def test_report_csv_of_a_campaign_larger_than_a_page_has_every_row_in_order(
    journal: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.csv"
    result = CliRunner().invoke(
        cli, ["--journal", str(journal), "--output", "json", "campaign", "report", "big",
              "--csv", str(path)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pending"] == ROWS
    with path.open(encoding="utf-8", newline="") as handle:
        assert [row["key"] for row in csv.DictReader(handle)] == keys(ROWS)


def test_an_empty_json_export_is_an_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.db"
    build(path, "big", 3)
    result = CliRunner().invoke(
        cli, ["--journal", str(path), "--output", "json", "campaign", "export", "big",
              "--state", "unknown"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def exported_peak(journal: Path, out: Path) -> int:
    """The peak of Python allocations while the command exports campaign ``big`` (JSON
    lines) into the file ``out``."""
    args = ["--journal", str(journal), "--output", "jsonl", "campaign", "export", "big"]
    with out.open("w", encoding="utf-8") as handle, redirect_stdout(handle):
        tracemalloc.start()
        try:
            with pytest.raises(SystemExit) as ended:
                cli.main(args, prog_name="aiosms")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert ended.value.code == 0
    return peak


def test_export_memory_stays_at_a_page_however_many_rows_the_campaign_has(
    tmp_path: Path,
) -> None:
    small, large = 3000, 24000
    build(tmp_path / "small.db", "big", small)
    build(tmp_path / "large.db", "big", large)
    # A first export warms up: imports and first-use caches are not what is measured.
    exported_peak(tmp_path / "small.db", tmp_path / "warm.jsonl")
    small_peak = exported_peak(tmp_path / "small.db", tmp_path / "small.jsonl")
    large_peak = exported_peak(tmp_path / "large.db", tmp_path / "large.jsonl")
    assert len((tmp_path / "large.jsonl").read_text(encoding="utf-8").splitlines()) == large
    written = (tmp_path / "large.jsonl").stat().st_size
    print(f"peaks: {small} rows {small_peak:,} B, {large} rows {large_peak:,} B; "
          f"{large} rows written {written:,} B", file=sys.stderr)  # fmt: skip
    # Eight times the rows: holding them all would take several times the memory.
    assert large_peak < 1.5 * small_peak
    # And less than the text written: the rows never were all in memory at once.
    assert large_peak < written
