"""A folder of CSV files: how a user loads their own data.

`<SYMBOL>.csv` has the header `date,open,high,low,close,volume` (ISO dates, prices as traded);
optional `<SYMBOL>.splits.csv` (`date,ratio`) and `<SYMBOL>.dividends.csv` (`date,amount`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    SPLIT_COLUMNS,
    MarketDataBatch,
    SourceUnavailable,
)

BAR_HEADER = ["date", "open", "high", "low", "close", "volume"]


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
            file = self.folder / f"{symbol}.csv"
            if not file.exists():
                batch.failures[symbol] = f"no file {file.name} in {self.folder}"
                continue
            try:
                frame = _read(file, BAR_HEADER)
                # A broken splits or dividends file fails the symbol too: its bars alone would jump.
                actions = [
                    (_read(extra, columns).rename(columns={"date": date_column}), out, date_column)
                    for suffix, columns, out, date_column in (
                        ("splits", ["date", "ratio"], splits, "date"),
                        ("dividends", ["date", "amount"], dividends, "ex_date"),
                    )
                    if (extra := self.folder / f"{symbol}.{suffix}.csv").exists()
                ]
            except ValueError as exc:
                batch.failures[symbol] = str(exc)
                continue
            bars.append(_between(frame.assign(symbol=symbol), "date", lo, hi)[BAR_COLUMNS])
            for events, out, date_column in actions:
                out.append(_between(events.assign(symbol=symbol), date_column, lo, hi))
        if bars:
            batch.bars = pd.concat(bars, ignore_index=True)
        if splits:
            batch.splits = pd.concat(splits, ignore_index=True)[SPLIT_COLUMNS]
        if dividends:
            batch.dividends = pd.concat(dividends, ignore_index=True)[DIVIDEND_COLUMNS]
        return batch


def _read(file: Path, header: list[str]) -> pd.DataFrame:
    """Read one CSV, insisting on its header so a misnamed column is named in the error."""
    frame = pd.read_csv(file, dtype={"date": str})
    missing = [c for c in header if c not in frame.columns]
    if missing:
        raise ValueError(f"{file.name}: missing column(s) {missing}; expected header {','.join(header)}")
    frame = frame[header].copy()
    frame["date"] = frame["date"].fillna("").str.strip()  # an empty date goes on to validation, not a crash
    return frame


def _between(frame: pd.DataFrame, column: str, lo: str, hi: str) -> pd.DataFrame:
    """Rows dated from `lo` to `hi` (ISO strings compare in date order); bad dates pass on to validation."""
    dates = frame[column]
    return frame[~((dates < lo) | (dates > hi)) | ~dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}")]
