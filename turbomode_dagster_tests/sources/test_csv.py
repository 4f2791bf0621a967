"""The CSV-folder source: <SYMBOL>.csv plus optional splits and dividends files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.ingestion.validation import validate_bars
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    ORIGIN,
    REJECTED,
    SPLIT_COLUMNS,
    SourceUnavailable,
)
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
    assert list(batch.bars.columns) == [*BAR_COLUMNS, ORIGIN, REJECTED]
    assert batch.bars[REJECTED].isna().all()
    assert batch.bars[ORIGIN].tolist()[:2] == ["AAPL.csv line 3", "AAPL.csv line 4"]
    assert batch.bars[["symbol", "date", "close"]].values.tolist() == [
        ["AAPL", "2026-11-20", 101],
        ["AAPL", "2026-11-23", 102],
        ["AAPL", "2026-11-24", 103],
        ["AAPL", "2026-11-25", 104],
        ["NVDA", "2026-11-24", 10.5],
    ]
    assert batch.splits[SPLIT_COLUMNS].values.tolist() == [["AAPL", "2026-11-24", 4]]
    assert batch.dividends[DIVIDEND_COLUMNS].values.tolist() == [["AAPL", "2026-11-23", 0.25]]
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


def test_unreadable_dates_are_rejected_with_file_and_line(folder: Path) -> None:
    (folder / "MSFT.csv").write_text(
        "date,open,high,low,close,volume\n2026-11-24,1,2,0.5,1.5,10\n,1,2,0.5,1.5,10\n24/11/2026,1,2,0.5,1.5,10\n"
    )
    batch = CsvSource(folder).fetch(["MSFT"], START, END)
    assert batch.bars["date"].tolist() == ["2026-11-24", "", "24/11/2026"]
    accepted, rejected = validate_bars(batch.bars.assign(source="csv"), "2026-11-25")
    assert accepted["date"].tolist() == ["2026-11-24"]
    assert rejected["reason"].tolist() == [
        "MSFT.csv line 3: date '' is not a real date in YYYY-MM-DD form",
        "MSFT.csv line 4: date '24/11/2026' is not a real date in YYYY-MM-DD form",
    ]


MALFORMED = (
    b"date,open,high,low,close,volume\n"
    b"2026-11-20,100,102,99,101,1000\n"
    b"2026-02-30,100,102,99,101,1000\n"  # line 3: no such day
    b"2026-11-23,101,103,\xff100,102,1100\n"  # line 4: not UTF-8
    b"2026-11-24,102,104,101,103,1200,9\n"  # line 5: an extra field
    b"2026-11-25,103,105,102,104\n"  # line 6: a missing field
    b"2026-11-25,103,105,102,104,13e\r\n"  # line 7: not a number
    b"2026-11-25,103,105,102,104,1300\r\n"
    b"\n"
    b"2026-11-19,99,101,98,100,900,extra\n"  # outside the window: not fetched, so not judged
)


def test_each_malformed_row_is_rejected_with_file_line_and_reason_and_the_rest_is_kept(folder: Path) -> None:
    (folder / "MSFT.csv").write_bytes(MALFORMED)
    batch = CsvSource(folder).fetch(["MSFT"], START, END)
    assert batch.failures == {}
    rejected = batch.bars.dropna(subset=[REJECTED])
    assert rejected[REJECTED].tolist() == [
        "MSFT.csv line 3: date '2026-02-30' is not a real date in YYYY-MM-DD form",
        "MSFT.csv line 4: byte 20 is not valid UTF-8",
        "MSFT.csv line 5: has 7 fields, the header has 6",
        "MSFT.csv line 6: has 5 fields, the header has 6",
        "MSFT.csv line 7: volume '13e' is not a number",
    ]
    accepted, quarantined = validate_bars(batch.bars.assign(source="csv"), "2026-11-25")
    assert accepted[["date", "close", "volume"]].values.tolist() == [
        ["2026-11-20", 101, 1000],
        ["2026-11-25", 104, 1300],
    ]
    assert quarantined["reason"].tolist() == rejected[REJECTED].tolist()
    payloads = [json.loads(p) for p in quarantined["payload"]]
    assert payloads[1]["low"] == "\\xff100", "the payload keeps what the file said"
    assert (payloads[4]["open"], payloads[4]["volume"]) == ("103", "13e")
    assert [p["origin"] for p in payloads] == [f"MSFT.csv line {n}" for n in range(3, 8)]


def test_splits_and_dividends_files_are_read_row_by_row_too(folder: Path) -> None:
    (folder / "AAPL.splits.csv").write_text("date,ratio\n2026-11-24,4\n2026-11-23,four\n")
    batch = CsvSource(folder).fetch(["AAPL"], START, END)
    assert batch.splits[SPLIT_COLUMNS].values.tolist()[0] == ["AAPL", "2026-11-24", 4]
    assert batch.splits[REJECTED].tolist()[1] == "AAPL.splits.csv line 3: ratio 'four' is not a number"


@pytest.mark.parametrize(
    ("symbol", "reason"),
    [
        ("../outside", "contains a path separator"),
        ("..", "contains '..'"),
        ("A\x00B", "contains a NUL byte"),
        ("A\\B", "contains a path separator"),
        ("/etc/passwd", "contains a path separator"),
        ("aapl", "is not an upper-case ticker"),
        ("", "is not an upper-case ticker"),
    ],
)
def test_a_symbol_that_is_no_ticker_is_never_made_into_a_path(folder: Path, symbol: str, reason: str) -> None:
    outside = folder.parent / "outside.csv"
    outside.write_text("date,open,high,low,close,volume\n2026-11-24,1,2,0.5,1.5,10\n")
    batch = CsvSource(folder).fetch([symbol, "NVDA"], START, END)
    assert reason in batch.failures[symbol]
    assert repr(symbol) in batch.failures[symbol]
    assert set(batch.bars["symbol"]) == {"NVDA"}


def test_an_unreadable_file_fails_only_its_symbol(folder: Path) -> None:
    (folder / "MSFT.csv").mkdir()  # a folder where a file should be: not a file
    (folder / "AMD.csv").write_bytes(b"\xff\xfe,open\n")
    batch = CsvSource(folder).fetch(["MSFT", "AMD", "NVDA"], START, END)
    assert "no file MSFT.csv" in batch.failures["MSFT"]
    assert "AMD.csv line 1: the header cannot be read" in batch.failures["AMD"]
    assert set(batch.bars["symbol"]) == {"NVDA"}


def test_a_missing_folder_makes_the_source_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        CsvSource(tmp_path / "nowhere").fetch(["AAPL"], START, END)


def test_the_factory_puts_a_relative_folder_under_the_home(make_config, home: Path) -> None:
    cfg = load_settings(make_config({"sources.order": ["csv"], "sources.csv.path": "my_csv"}))
    source = build_source("csv", cfg, home)
    assert isinstance(source, CsvSource)
    assert source.folder == home / "my_csv"
    assert source.name == "csv"
