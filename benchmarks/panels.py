"""Market panels the benchmarks share: a vectorised random walk, and the project's SampleSource as traded or adjusted.

Each returns (bars, sectors, fundamentals) in the shapes `compute_features` takes: bars with symbol,
date (datetime64), open, high, low, close, volume; sectors with symbol, sector; one fundamentals row
per symbol and fiscal quarter.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from turbomode_dagster.prices import adjusted_bars
from turbomode_dagster.sources.base import MarketDataBatch
from turbomode_dagster.sources.sample import SampleSource

SECTORS = ("Technology", "Health Care", "Financials", "Energy", "Industrials", "Utilities", "Materials")
SAMPLE_SEED = 7
SAMPLE_START = dt.date(2010, 1, 4)
Market = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def synthetic_market(symbols: int, sessions: int, seed: int = 0) -> Market:
    """Bars, sectors and quarterly fundamentals of a random-walk market, one vectorised draw per field.

    One symbol in ten lists late (first bar in the first half) and one in twenty delists early.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=sessions)
    names = np.array([f"S{i:04d}" for i in range(symbols)], dtype=object)
    vol = rng.uniform(0.01, 0.03, (symbols, 1))
    close = rng.uniform(10, 300, (symbols, 1)) * np.exp(
        np.cumsum(rng.normal(0.0003, 1.0, (symbols, sessions)) * vol, axis=1)
    )
    open_ = close * np.exp(rng.normal(0, 0.3, close.shape) * vol)
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 1, close.shape) * vol)
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 1, close.shape) * vol)
    volume = np.round(rng.lognormal(13, 0.5, (symbols, 1)) * rng.lognormal(0, 0.4, close.shape))
    first = np.where(rng.random(symbols) < 0.1, rng.integers(0, sessions // 2, symbols), 0)
    last = np.where(rng.random(symbols) < 0.05, rng.integers(sessions // 2, sessions, symbols), sessions)
    column = np.arange(sessions)
    keep = ((column >= first[:, None]) & (column < last[:, None])).ravel()
    bars = pd.DataFrame(
        {
            "symbol": np.repeat(names, sessions)[keep],
            "date": np.tile(dates.values, symbols)[keep],
            "open": open_.ravel()[keep],
            "high": high.ravel()[keep],
            "low": low.ravel()[keep],
            "close": close.ravel()[keep],
            "volume": volume.ravel()[keep],
        }
    )
    sectors = pd.DataFrame(
        {"symbol": names, "sector": np.array(SECTORS, dtype=object)[np.arange(symbols) % len(SECTORS)]}
    )
    quarter_ends = pd.date_range(dates[0] - pd.Timedelta(days=400), dates[-1], freq="QE")
    quarters = len(quarter_ends)
    revenue = rng.lognormal(20, 1, (symbols, 1)) * np.exp(
        np.cumsum(rng.normal(0.01, 0.05, (symbols, quarters)), axis=1)
    )
    shares = rng.lognormal(19, 0.7, (symbols, 1)) * np.ones((1, quarters))
    fundamentals = pd.DataFrame(
        {
            "symbol": np.repeat(names, quarters),
            "period_end": np.tile(quarter_ends.values, symbols),
            "available_date": np.tile(quarter_ends.values, symbols) + np.timedelta64(40, "D"),
            "revenue": revenue.ravel(),
            "net_income": (revenue * rng.normal(0.1, 0.05, revenue.shape)).ravel(),
            "eps": (revenue * 0.1 / shares).ravel(),
            "book_value_per_share": (rng.uniform(5, 50, (symbols, 1)) * np.ones((1, quarters))).ravel(),
            "shares_outstanding": shares.ravel(),
        }
    )
    return bars, sectors, fundamentals


def sample_batch(symbols: int, sessions: int, planted_effect: float = 0.0) -> MarketDataBatch:
    """SampleSource data for `symbols` names over about `sessions` sessions from SAMPLE_START."""
    end = SAMPLE_START + dt.timedelta(days=int(sessions * 365.25 / 252))
    source = SampleSource(seed=SAMPLE_SEED, planted_effect=planted_effect)
    return source.fetch([f"S{i:04d}" for i in range(symbols)], SAMPLE_START, end)


def sample_market(symbols: int, sessions: int) -> Market:
    """SampleSource bars as traded (no adjustment), its sectors and fundamentals."""
    batch = sample_batch(symbols, sessions)
    bars = batch.bars.assign(date=pd.to_datetime(batch.bars["date"]))
    return bars, batch.metadata.loc[:, ["symbol", "sector"]], batch.fundamentals


def adjusted_sample_market(symbols: int, sessions: int, planted_effect: float) -> Market:
    """SampleSource data as the nightly feature asset reads it: split- and dividend-adjusted bars plus close_raw."""
    batch = sample_batch(symbols, sessions, planted_effect)
    bars = adjusted_bars(batch.bars, batch.splits, batch.dividends)
    bars["date"] = pd.to_datetime(bars["date"])
    columns = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw"]
    return bars[columns].reset_index(drop=True), batch.metadata.loc[:, ["symbol", "sector"]], batch.fundamentals


def size_arguments(description: str, default_out: Path) -> argparse.ArgumentParser:
    """A parser with the options every benchmark shares: --sizes, --sessions, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default="83,500,3000", help="comma-separated symbol counts to run")
    parser.add_argument("--sessions", type=int, default=2520, help="sessions per symbol (2520 = 10 years)")
    parser.add_argument("--out", type=Path, default=default_out, help="JSON output path")
    return parser


def symbol_counts(text: str) -> list[int]:
    """'83,500' -> [83, 500]."""
    return [int(s) for s in text.split(",") if s.strip()]
