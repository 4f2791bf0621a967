"""A folder of CSV files: how a user loads their own data.

`<SYMBOL>.csv` has the header `date,open,high,low,close,volume` (ISO dates, prices as traded);
optional `<SYMBOL>.splits.csv` (`date,ratio`) and `<SYMBOL>.dividends.csv` (`date,amount`).
Files are read line by line: a row that cannot be read (not UTF-8, too many or too few fields, an
impossible date, a value that is no number) is passed on as rejected with its file, line and reason,
and the rest of the file is used. A header without a required column fails the symbol.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pandas as pd

from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    ORIGIN,
    REJECTED,
    SPLIT_COLUMNS,
    MarketDataBatch,
    SourceUnavailable,
)
from turbomode_dagster.universe import symbol_problem

BAR_HEADER = ["date", "open", "high", "low", "close", "volume"]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CsvFileError(ValueError):
    """A file that cannot be used at all (unreadable, or its header lacks a required column)."""


class CsvSource:
    """Reads bars, splits and dividends for each symbol from `folder`."""

    name = "csv"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """Bars and corporate actions between `start` and `end` for the symbols that have a file."""
        if not self.folder.is_dir():
            raise SourceUnavailable(f"csv folder {self.folder} does not exist (set sources.csv.path)")
        batch = MarketDataBatch()
        bars, splits, dividends = [], [], []
        lo, hi = start.isoformat(), end.isoformat()
        for symbol in symbols:
            problem = symbol_problem(symbol)
            if problem:
                batch.failures[symbol] = f"{problem}, so no file is read for it"
                continue
            file = self.folder / f"{symbol}.csv"
            if not file.is_file():
                batch.failures[symbol] = f"no file {file.name} in {self.folder}"
                continue
            try:
                frame = _read(file, BAR_HEADER, lo, hi)
                # A broken splits or dividends file fails the symbol too: its bars alone would jump.
                actions = [
                    (_read(extra, columns, lo, hi).rename(columns={"date": date_column}), out)
                    for suffix, columns, out, date_column in (
                        ("splits", ["date", "ratio"], splits, "date"),
                        ("dividends", ["date", "amount"], dividends, "ex_date"),
                    )
                    if (extra := self.folder / f"{symbol}.{suffix}.csv").exists()
                ]
            except (CsvFileError, OSError) as exc:
                batch.failures[symbol] = str(exc)
                continue
            except Exception as exc:  # anything unforeseen fails this symbol only, naming it and its file
                batch.failures[symbol] = f"reading {file} for {symbol} failed: {type(exc).__name__}: {exc}"
                continue
            bars.append(frame.assign(symbol=symbol))
            for events, out in actions:
                out.append(events.assign(symbol=symbol))
        extra = [ORIGIN, REJECTED]
        if bars:
            batch.bars = pd.concat(bars, ignore_index=True)[BAR_COLUMNS + extra]
        if splits:
            batch.splits = pd.concat(splits, ignore_index=True)[SPLIT_COLUMNS + extra]
        if dividends:
            batch.dividends = pd.concat(dividends, ignore_index=True)[DIVIDEND_COLUMNS + extra]
        return batch


def _read(file: Path, fields: list[str], lo: str, hi: str) -> pd.DataFrame:
    """The rows of one CSV dated from `lo` to `hi`, plus every row whose date cannot be read.

    Each row carries its `origin` (file and line); a row that cannot be read carries the reason in
    `rejected` and its fields as text. The header must name every one of `fields` (in any order).
    """
    try:
        lines = file.read_bytes().split(b"\n")
    except OSError as exc:
        raise CsvFileError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        header = [h.strip() for h in _fields(lines[0].decode("utf-8-sig"))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CsvFileError(f"{file.name} line 1: the header cannot be read ({exc})") from exc
    missing = [c for c in fields if c not in header]
    if missing:
        raise CsvFileError(f"{file.name}: missing column(s) {missing}; expected header {','.join(fields)}")
    rows = [
        row
        for number, raw in enumerate(lines[1:], start=2)
        if raw.strip() and (row := _row(file.name, number, raw.rstrip(b"\r"), header, fields, lo, hi))
    ]
    return pd.DataFrame(rows, columns=[*fields, ORIGIN, REJECTED])


def _row(name: str, number: int, raw: bytes, header: list[str], fields: list[str], lo: str, hi: str) -> dict | None:
    """One line as a row of `fields`, None when its date is readable and outside [lo, hi]."""
    origin = f"{name} line {number}"
    problem = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", "backslashreplace")
        problem = f"byte {exc.start + 1} is not valid UTF-8"
    try:
        values = [v.strip() for v in _fields(text)]
    except csv.Error as exc:
        values, problem = [text], problem or f"not a CSV row ({exc})"
    row: dict[str, object] = {f: _at(values, header.index(f)) for f in fields}
    date = row["date"] = str(row["date"] or "")
    readable_date = _is_date(date)
    if readable_date and not lo <= date <= hi:
        return None
    if problem is None and len(values) != len(header):
        problem = f"has {len(values)} fields, the header has {len(header)}"
    if problem is None and not readable_date:
        problem = f"date {date!r} is not a real date in YYYY-MM-DD form"
    if problem is None:
        numbers = {field: _number(str(row[field] or "")) for field in fields[1:]}
        unreadable = [field for field, value in numbers.items() if value is None]
        if unreadable:
            problem = f"{unreadable[0]} {row[unreadable[0]]!r} is not a number"
        else:
            row.update(numbers)  # a rejected row keeps every field as the file wrote it
    row[ORIGIN] = origin
    row[REJECTED] = f"{origin}: {problem}" if problem else None
    return row


def _fields(text: str) -> list[str]:
    return next(csv.reader([text]), [])


def _at(values: list[str], position: int) -> str | None:
    return values[position] if position < len(values) else None


def _is_date(text: str) -> bool:
    if not ISO_DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> int | float | None:
    """An integer when the text is one (volumes stay exact), else a float; None when it is no number.

    'nan' and 'inf' parse here and are rejected by validation, which owns the numeric bounds.
    """
    if "_" in text:  # Python would read 1_000 as 1000; a CSV value with an underscore is a typo
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None
