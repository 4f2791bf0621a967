"""The contract every market-data source meets, and the frames it returns.

A source returns prices *as traded* (unadjusted), with splits as new shares per old share and cash
dividends per share on their ex-date. Dates are ISO strings (YYYY-MM-DD). No Dagster imports here.

A frame may carry two optional columns: `origin` (where a row came from, such as "AAPL.csv line 7",
kept in quarantine payloads) and `rejected` (why the source could not read the row; validation
quarantines such a row with exactly that reason instead of looking at its values).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]
SPLIT_COLUMNS = ["symbol", "date", "ratio"]
DIVIDEND_COLUMNS = ["symbol", "ex_date", "amount"]
FUNDAMENTAL_COLUMNS = [
    "symbol",
    "period_end",
    "available_date",
    "revenue",
    "net_income",
    "eps",
    "book_value_per_share",
    "shares_outstanding",
]
METADATA_COLUMNS = ["symbol", "name", "sector", "industry", "exchange", "currency"]
ORIGIN = "origin"
REJECTED = "rejected"


class SourceUnavailable(Exception):
    """The whole source cannot serve now (refused connection, DNS failure, timeout, rate limit).

    The fallback chain moves every remaining symbol on to the next source when it sees this.
    """


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """An empty frame with the given columns, for a source that has nothing of one kind."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


@dataclass
class MarketDataBatch:
    """Everything a source fetched for some symbols over a date range, plus who it failed for.

    `failures` maps a symbol to the reason this source could not serve it; such a symbol has no
    rows in `bars`.
    """

    bars: pd.DataFrame = field(default_factory=lambda: empty_frame(BAR_COLUMNS))
    splits: pd.DataFrame = field(default_factory=lambda: empty_frame(SPLIT_COLUMNS))
    dividends: pd.DataFrame = field(default_factory=lambda: empty_frame(DIVIDEND_COLUMNS))
    fundamentals: pd.DataFrame = field(default_factory=lambda: empty_frame(FUNDAMENTAL_COLUMNS))
    metadata: pd.DataFrame = field(default_factory=lambda: empty_frame(METADATA_COLUMNS))
    failures: dict[str, str] = field(default_factory=dict)


class MarketDataSource(Protocol):
    """A market-data source: `fetch` returns a batch for the symbols it can serve.

    It raises `SourceUnavailable` when it cannot serve anything now, and records per-symbol
    problems (unknown symbol, empty history) in `MarketDataBatch.failures`.
    """

    name: str

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch: ...
