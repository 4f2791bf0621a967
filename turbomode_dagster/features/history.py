"""What the feature engine reads from the Master DB for one night: adjusted bars, sectors, fundamentals.

Everything is cut at the night's session, so nothing after it can reach a feature or a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from turbomode_dagster.prices import adjusted_bars
from turbomode_dagster.storage.market_db import MarketDataReader


@dataclass(frozen=True)
class MarketHistory:
    """Adjusted bars (date as datetime64, plus close_raw), sectors and fundamentals known by `as_of`."""

    as_of: str
    bars: pd.DataFrame
    sectors: pd.DataFrame
    fundamentals: pd.DataFrame


def load_history(reader: MarketDataReader, symbols: Sequence[str], as_of: str) -> MarketHistory:
    """Read the universe's history up to `as_of` through the read-only handle and adjust it."""
    raw = reader.bars(symbols=symbols, end=as_of)
    if raw.empty:
        raise LookupError(f"the Master DB holds no bars for the universe up to {as_of}: run ingestion first")
    # Only events on a bar up to as_of enter the adjustment, so later splits cannot leak backwards.
    adjusted = adjusted_bars(raw, reader.splits(symbols=symbols), reader.dividends(symbols=symbols))
    adjusted["date"] = pd.to_datetime(adjusted["date"])
    columns = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw"]
    return MarketHistory(
        as_of=as_of,
        bars=adjusted[columns].reset_index(drop=True),
        sectors=reader.metadata()[["symbol", "sector"]],
        fundamentals=reader.fundamentals(symbols=symbols, known_by=as_of),
    )
