"""Synthetic markets the backtest tests share."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_walk_closes(
    rng: np.random.Generator, dates: pd.DatetimeIndex, symbols: list[str], start: float, drift: float, vol: float
) -> pd.DataFrame:
    """date, symbol, close: one geometric random walk per symbol from `start`, daily log-returns N(drift, vol)."""
    close = start * np.exp(np.cumsum(rng.normal(drift, vol, (len(dates), len(symbols))), axis=0))
    frame = pd.DataFrame(close, index=dates, columns=symbols).stack().rename("close").reset_index()
    frame.columns = ["date", "symbol", "close"]
    return frame
