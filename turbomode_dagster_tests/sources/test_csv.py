"""The CSV-folder source: <SYMBOL>.csv plus optional splits and dividends files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.ingestion.validation import validate_bars
from turbomode_dagster.sources.base import BAR_COLUMNS, DIVIDEND_COLUMNS, SPLIT_COLUMNS, SourceUnavailable
from turbomode_dagster.sources.csv import CsvSource
from turbomode_dagster.sources.factory import build_source

START, END = dt.date(2026, 11, 20), dt.date(2026, 11, 25)
AAPL = """date,open,high,low,close,volume
2026-11-19,99,101,98,100,900
2026-11-20,100,102,99,101,1000
2026-11-23, 101,103,100,102,1100
2026-11-24,102,104,101,103,1200
2026-11-25,103,105,102,104,1300
2026-11-27,104,106,103,105,1400
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "csv"
    path.mkdir()
    (path / "AAPL.csv").write_text(AAPL)
    (path / "AAPL.splits.csv").write_text("date,ratio\n2026-11-10,2\n2026-11-24,4\n")
    (path / "AAPL.dividends.csv").write_text("date,amount\n2026-11-23,0.25\n2026-12-01,0.25\n")
    (path / "NVDA.csv").write_text("date,open,high,low,close,volume\n2026-11-24,10,11,9,10.5,50\n")
    return path


def test_reads_bars_and_corporate_actions_within_the_dates(folder: Path) -> None:
    batch = CsvSource(folder).fetch(["AAPL", "NVDA"], START, END)
    assert list(batch.bars.columns) == BAR_COLUMNS
    assert batch.bars[["symbol", "date", "close"]].values.tolist() == [
        ["AAPL", "2026-11-20", 101],
        ["AAPL", "2026-11-23", 102],
        ["AAPL", "2026-11-24", 103],
        ["AAPL", "2026-11-25", 104],
        ["NVDA", "2026-11-24", 10.5],
    ]
    assert list(batch.splits.columns) == SPLIT_COLUMNS
    assert batch.splits.values.tolist() == [["AAPL", "2026-11-24", 4]]
    assert list(batch.dividends.columns) == DIVIDEND_COLUMNS
    assert batch.dividends.values.tolist() == [["AAPL", "2026-11-23", 0.25]]
    assert batch.failures == {}


def test_a_missing_file_is_a_per_symbol_failure(folder: Path) -> None:
    batch = CsvSource(folder).fetch(["AAPL", "MSFT"], START, END)
    assert set(batch.failures) == {"MSFT"}
    assert "MSFT.csv" in batch.failures["MSFT"]
    assert set(batch.bars["symbol"]) == {"AAPL"}


def test_a_bad_header_names_the_missing_column(folder: Path) -> None:
    (folder / "MSFT.csv").write_text("date,open,high,low,Close,volume\n2026-11-24,1,2,0.5,1.5,10\n")
    batch = CsvSource(folder).fetch(["MSFT", "AAPL"], START, END)
    assert "MSFT.csv" in batch.failures["MSFT"]
    assert "'close'" in batch.failures["MSFT"]
    assert set(batch.bars["symbol"]) == {"AAPL"}


def test_a_bad_corporate_action_file_fails_its_symbol_not_the_fetch(folder: Path) -> None:
    (folder / "AAPL.dividends.csv").write_text("date,amt\n2026-11-23,0.25\n")
    batch = CsvSource(folder).fetch(["AAPL", "NVDA"], START, END)
    assert "AAPL.dividends.csv" in batch.failures["AAPL"]
    assert "'amount'" in batch.failures["AAPL"]
    assert set(batch.bars["symbol"]) == {"NVDA"}
    assert batch.splits.empty


def test_bad_dates_pass_on_to_validation(folder: Path) -> None:
    (folder / "MSFT.csv").write_text(
        "date,open,high,low,close,volume\n2026-11-24,1,2,0.5,1.5,10\n,1,2,0.5,1.5,10\n24/11/2026,1,2,0.5,1.5,10\n"
    )
    batch = CsvSource(folder).fetch(["MSFT"], START, END)
    assert batch.bars["date"].tolist() == ["2026-11-24", "", "24/11/2026"]
    accepted, rejected = validate_bars(batch.bars.assign(source="csv"), "2026-11-25")
    assert accepted["date"].tolist() == ["2026-11-24"]
    assert set(rejected["reason"]) == {"date is not a valid YYYY-MM-DD"}


def test_a_missing_folder_makes_the_source_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        CsvSource(tmp_path / "nowhere").fetch(["AAPL"], START, END)


def test_the_factory_puts_a_relative_folder_under_the_home(make_config, home: Path) -> None:
    cfg = load_settings(make_config({"sources.order": ["csv"], "sources.csv.path": "my_csv"}))
    source = build_source("csv", cfg, home)
    assert isinstance(source, CsvSource)
    assert source.folder == home / "my_csv"
    assert source.name == "csv"
